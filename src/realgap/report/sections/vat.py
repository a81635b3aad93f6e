"""Report section "vat": the Visual Alignment Testing verdict and its saliency grid.

Reads finished runs of kind ``vat`` (``realgap vat``; layout in
:func:`realgap.protocol.vat._write`): ``scores`` rows ``success_rate`` of ``pi_B`` and
``pi_B'`` (k/n in ``extra``, Wilson ``lo``/``hi``), subject ``vat`` with metric ``t``
whose ``extra`` holds the whole test (critical value, n, eps, alpha, p, mean and sd of
D, reject, decision), and the artifact ``vat_saliency`` (PNG, caption in ``meta``).

Shown per run (newest first): the verdict line, a table t / critical / n / eps / alpha /
p, both success rates with k/n and 95% Wilson intervals, and the FullGrad grid.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from realgap.report._html import esc, fmt, fmt_ci, png_img, table
from realgap.store import ResultsDB

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


def _one(db: ResultsDB, run: pd.Series) -> str:
    sc = db.scores(run["run_id"])
    cfg = json.loads(run["config"] or "{}")
    t_rows = sc[(sc.subject == "vat") & (sc.metric == "t")]
    if t_rows.empty:
        return ""
    test = json.loads(t_rows.iloc[0]["extra"] or "{}")
    reject = bool(test.get("reject"))
    cls = "verdict-fail" if reject else "verdict-pass"
    head = (f"<h3>{esc(run['name'])} <span class='note'>run {esc(run['run_id'])}</span></h3>"
            f"<p class='{cls}'>{esc(test.get('decision', ''))}</p>")
    stats = pd.DataFrame([{
        "t": _num(test.get("t")), "critical t": _num(test.get("critical")), "n pairs": test.get("n"),
        "df": (test.get("n") or 1) - 1, "eps": test.get("eps"), "alpha": test.get("alpha"),
        "one-sided p": _num(test.get("p_value")), "mean D": _num(test.get("mean_diff")),
        "sd D": _num(test.get("sd_diff")), "H0 rejected": "yes" if reject else "no"}])
    rates = []
    for subj, what in (("pi_B", f"end to end on {cfg.get('task_b', 'B')}"),
                       ("pi_B'", (f"on {cfg.get('task_b', 'B')} with pi_A's frozen encoder "
                                  f"(trained on {cfg.get('task_a', 'A')})"))):
        r = sc[(sc.subject == subj) & (sc.metric == "success_rate")]
        if r.empty:
            continue
        row = r.iloc[0]
        ex = json.loads(row["extra"] or "{}")
        ret = sc[(sc.subject == subj) & (sc.metric == "mean_return")]
        ret_cell = fmt_ci(ret.iloc[0]["value"], ret.iloc[0]["lo"], ret.iloc[0]["hi"]) \
            if not ret.empty else "—"
        rates.append({"policy": subj, "trained": what,
                      "k/n": f"{ex.get('successes', '?')}/{ex.get('trials', row['n'])}",
                      "success rate [95% Wilson]": fmt_ci(row["value"], row["lo"], row["hi"]),
                      "mean return [95% bootstrap]": ret_cell})
    parts = [head,
             table(stats, table_id=f"vat-test-{run['run_id']}", sortable=False,
                   caption="One-sided dependent t-test of H0: mean(D) <= eps, D_i = r_i(pi_B) - "
                           "r_i(pi_B') over paired initial states (visual-alignment-testing.txt "
                           f"III-C, eq. 4-7); r = {test.get('metric', 'success')} per rollout."),
             table(pd.DataFrame(rates), table_id=f"vat-rates-{run['run_id']}", sortable=False,
                   raw_html_columns=("success rate [95% Wilson]", "mean return [95% bootstrap]"),
                   caption=f"head {cfg.get('head', '?')}, encoder {cfg.get('encoder', '?')}, "
                           f"{cfg.get('rollouts', '?')} rollouts x {cfg.get('checkpoints', '?')} "
                           "checkpoint(s) per policy")]
    art = db.artifacts(run["run_id"])
    art = art[art.name == "vat_saliency"]
    if not art.empty:
        a = art.iloc[0]
        cap = json.loads(a["meta"] or "{}").get("caption", "")
        parts.append(f"<figure>{png_img(bytes(a['data']), alt='VAT FullGrad saliency grid', width=520)}"
                     f"<figcaption>{esc(cap)}</figcaption></figure>")
    return "".join(parts)


def render(db: ResultsDB) -> str | None:
    runs = db.query("SELECT * FROM runs WHERE kind = 'vat' AND status = 'ok' "
                    "ORDER BY created DESC, run_id DESC")
    if runs.empty:
        return None
    body = [_one(db, r) for _, r in runs.head(MAX_RUNS).iterrows()]
    body = [b for b in body if b]
    if not body:
        return None
    intro = ("<p class='note'>Two tasks with the same scenes and different targets. If the "
             "end-to-end encoders played no part in decisions, pi_A's encoder could replace "
             "pi_B's without loss; a rejected H0 says it cannot.</p>")
    return intro + "".join(body)
