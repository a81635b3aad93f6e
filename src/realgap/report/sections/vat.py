"""Report section "vat": the Visual Alignment Testing verdict and its saliency grid.

Reads finished ``vat`` runs (``realgap vat``) through :mod:`realgap.store.vat`: the success
rates of ``pi_B`` and ``pi_B'`` (k/n, Wilson), their mean returns (bootstrap over rollouts),
the whole paired t-test and the FullGrad grid.

Shown per run (newest first): the verdict line, a table t / critical / n / eps / alpha /
p, both success rates with k/n and 95% Wilson intervals, and the FullGrad grid.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from realgap.report._html import esc, fmt, fmt_ci, png_img, table
from realgap.report.sections import register_section
from realgap.store import ResultsDB
from realgap.store.common import finished_runs
from realgap.store.vat import PI_B, PI_B_PRIME, RUN_KIND, read_vat

ANCHOR = "vat"
TITLE = "Visual Alignment Testing"

#: At most this many VAT runs are shown (newest first).
MAX_RUNS = 5


def _num(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return fmt(float(x))


def _one(db: ResultsDB, run_id: str) -> str:
    rec = read_vat(db, run_id)
    cfg, test = rec.config, rec.test
    reject = bool(test.get("reject"))
    cls = "verdict-fail" if reject else "verdict-pass"
    head = (f"<h3>{esc(rec.name)} <span class='note'>run {esc(run_id)}</span></h3>"
            f"<p class='{cls}'>{esc(test.get('decision', ''))}</p>")
    stats = pd.DataFrame([{
        "t": _num(test.get("t")), "critical t": _num(test.get("critical")), "n pairs": test.get("n"),
        "df": (test.get("n") or 1) - 1, "eps": test.get("eps"), "alpha": test.get("alpha"),
        "one-sided p": _num(test.get("p_value")), "mean D": _num(test.get("mean_diff")),
        "sd D": _num(test.get("sd_diff")), "H0 rejected": "yes" if reject else "no"}])
    rates = []
    for subj, what in ((PI_B, f"end to end on {cfg.get('task_b', 'B')}"),
                       (PI_B_PRIME, (f"on {cfg.get('task_b', 'B')} with pi_A's frozen encoder "
                                     f"(trained on {cfg.get('task_a', 'A')})"))):
        r = rec.rates.get(subj)
        if r is None:
            continue
        ret = rec.returns.get(subj)
        rates.append({"policy": subj, "trained": what, "k/n": f"{r.successes}/{r.trials}",
                      "success rate [95% Wilson]": fmt_ci(r.rate, r.lo, r.hi),
                      "mean return [95% bootstrap]": "—" if ret is None
                      else fmt_ci(ret.value, ret.lo, ret.hi)})
    parts = [head,
             table(stats, table_id=f"vat-test-{run_id}", sortable=False,
                   caption="One-sided dependent t-test of H0: mean(D) <= eps, D_i = r_i(pi_B) - "
                           "r_i(pi_B') over paired initial states (visual-alignment-testing.txt "
                           f"III-C, eq. 4-7); r = {test.get('metric', 'success')} per rollout."),
             table(pd.DataFrame(rates), table_id=f"vat-rates-{run_id}", sortable=False,
                   raw_html_columns=("success rate [95% Wilson]", "mean return [95% bootstrap]"),
                   caption=f"head {cfg.get('head', '?')}, encoder {cfg.get('encoder', '?')}, "
                           f"{cfg.get('rollouts', '?')} rollouts x {cfg.get('checkpoints', '?')} "
                           "checkpoint(s) per policy")]
    if rec.saliency_png:
        parts.append(f"<figure>{png_img(rec.saliency_png, alt='VAT FullGrad saliency grid', width=520)}"
                     f"<figcaption>{esc(rec.saliency_caption)}</figcaption></figure>")
    return "".join(parts)


def render(db: ResultsDB) -> str | None:
    runs = list(reversed(finished_runs(db, [RUN_KIND])))
    if not runs:
        return None
    body = [_one(db, r.run_id) for r in runs[:MAX_RUNS]]
    body = [b for b in body if b]
    if not body:
        return None
    intro = ("<p class='note'>Two tasks with the same scenes and different targets. If the "
             "end-to-end encoders played no part in decisions, pi_A's encoder could replace "
             "pi_B's without loss; a rejected H0 says it cannot.</p>")
    return intro + "".join(body)


register_section("vat", anchor=ANCHOR, title=TITLE, kinds=(RUN_KIND,), order=70)(render)
