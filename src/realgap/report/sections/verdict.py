"""The answer first: a short verdict generated from the newest gap run's numbers.

Every sentence is computed from the stored scores, never written by hand: which encoders
can be told apart (the ranking with ties of paired episode-bootstrap differences), which is
best and by how much, whether each encoder's Action Score stands above its shuffled-action
floor, whether the domains are told apart (C2ST against its permutation null), what the
coverage check found, and whether pretrained weights beat random ones. Thresholds: 95%
intervals, permutation p < 0.05; both stated in the text.
"""

from __future__ import annotations

from typing import Any

from realgap.report._html import esc
from realgap.report.sections import register_section
from realgap.store import ResultsDB
from realgap.store.gap import (
    OUTSIDE_METRIC,
    RANKED_BY,
    estimate_dict,
    is_random_init,
    latest_gap_run,
    load_encoders,
    load_flagged,
    load_ranking,
    load_scores,
)
from realgap.store.gap import RUN_KIND as GAP_KIND

ANCHOR = "verdict"
TITLE = "Verdict"

PAPER = ("Bridging the Sim2Real Gap: A Framework for Evaluating Vision Encoder Pre-Training "
         "for Visuomotor Policy Transfer")
LEVEL = 0.05


def _num(est: dict[str, Any] | None, key: str = "value") -> float | None:
    if not est:
        return None
    v = est.get(key)
    return None if v is None else float(v)


def _ci(est: dict[str, Any] | None) -> str:
    v, lo, hi = _num(est), _num(est, "lo"), _num(est, "hi")
    if v is None:
        return "n/a"
    if lo is None or hi is None:
        return f"{v:.3f}"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _names(names: list[str]) -> str:
    quoted = [f"<b>{esc(n)}</b>" for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def ranking_sentence(ranking: list[dict[str, Any]], est: dict[str, dict[str, Any]]) -> str:
    """Who is best, by how much, and who cannot be told apart."""
    if not ranking:
        return "No ranking was recorded for this run."
    firsts = [r["encoder"] for r in ranking if r["rank"] == 1]
    best = ranking[0]["encoder"]
    score = ranking[0].get("score") or RANKED_BY
    head = f"{_names([best])}: {esc(score)} {_ci(est.get(best, {}).get(score))}"
    if len(firsts) == len(ranking) and len(ranking) > 1:
        return ("<b>No encoder can be told apart from the others</b> on this data: every paired "
                f"difference of the {esc(score)} score has a 95% interval containing 0 (top point "
                f"estimate {head}). More episodes, or a task whose action the camera shows more "
                "plainly, are needed before choosing.")
    if len(firsts) == 1:
        runner = next((r for r in ranking if r["encoder"] != best), None)
        gap = ""
        if runner is not None and runner.get("value") is not None and ranking[0].get("value") is not None:
            gap = (f", {float(ranking[0]['value']) - float(runner['value']):.3f} ahead of the next "
                   f"({_names([runner['encoder']])})")
        return (f"<b>Best: {head}</b>{gap}; it beats every other encoder beyond noise (paired "
                "episode-bootstrap differences, 95%).")
    others = [n for n in firsts if n != best]
    return (f"<b>Top: {head}</b>, but it cannot be told apart from {_names(others)} (their paired "
            "95% difference intervals contain 0): they share rank 1.")


def floor_sentence(est: dict[str, dict[str, Any]]) -> str | None:
    """Which encoders' AS(sim) stands above the shuffled-action floor."""
    above: list[str] = []
    below: list[str] = []
    for name, e in est.items():
        a, f = e.get("as_sim"), e.get("as_sim_floor")
        if not a or not f or _num(a, "lo") is None or _num(f) is None:
            continue
        f_hi = _num(f, "hi") if _num(f, "hi") is not None else _num(f)
        (above if _num(a, "lo") > f_hi else below).append(name)  # type: ignore[operator]
    if not above and not below:
        return None
    parts = []
    if above:
        parts.append(f"the Action Score on sim of {_names(above)} lies above its shuffled-action "
                     "floor (its interval clears the floor's)")
    if below:
        parts.append(f"{_names(below)} cannot be told from the floor, so {'its' if len(below) == 1 else 'their'} "
                     "AS means nothing here")
    return "Task information: " + "; ".join(parts) + "."


def domain_sentence(est: dict[str, dict[str, Any]]) -> str | None:
    """Are the domains told apart (C2ST read against its permutation null)?"""
    sep: list[tuple[str, dict[str, Any]]] = []
    not_sep: list[tuple[str, dict[str, Any]]] = []
    for name, e in est.items():
        c = e.get("c2st_acc")
        if not c or c.get("p_value") is None:
            continue
        (sep if float(c["p_value"]) < LEVEL else not_sep).append((name, c))
    if not sep and not not_sep:
        return None
    accs = [float(c["value"]) for _, c in sep + not_sep if c.get("value") is not None]
    rng = f" (C2ST accuracy {min(accs):.2f}-{max(accs):.2f})" if accs else ""
    if not not_sep:
        return (f"Domain gap: every encoder tells sim from real frames better than chance{rng}, "
                f"permutation p < {LEVEL} for all: no encoder is invariant to this gap.")
    if not sep:
        return (f"Domain gap: no encoder tells sim from real frames better than chance{rng}; "
                "at this sample size the domains look alike to all of them.")
    return (f"Domain gap: {_names([n for n, _ in sep])} tell sim from real beyond chance "
            f"(p < {LEVEL}); {_names([n for n, _ in not_sep])} do not{rng}.")


def coverage_sentence(est: dict[str, dict[str, Any]], flagged: dict[str, list[Any]],
                      meta: dict[str, dict[str, Any]]) -> str | None:
    """What the coverage check found, per encoder, against the rate chance would give."""
    if not flagged and not any(OUTSIDE_METRIC in e for e in est.values()):
        return None
    bits = []
    for name, e in est.items():
        n_real = meta.get(name, {}).get("n_real")
        k = len(flagged.get(name, []))
        if n_real:
            bits.append(f"{_names([name])} {k}/{int(n_real)}")
        elif OUTSIDE_METRIC in e:
            bits.append(f"{_names([name])} {_ci(e[OUTSIDE_METRIC])}")
    if not bits:
        return None
    return ("Coverage: real frames flagged outside sim support (conformal p < 0.05, so about 5% "
            "of in-distribution frames are flagged by chance): " + ", ".join(bits) + ".")


def pretrained_sentence(ranking: list[dict[str, Any]], meta: dict[str, dict[str, Any]]) -> str | None:
    """Does any pretrained encoder beat every random-init one beyond noise?"""
    rank = {r["encoder"]: r for r in ranking}
    random = [n for n, m in meta.items() if is_random_init(m) and n in rank]
    trained = [n for n, m in meta.items() if not is_random_init(m) and n in rank
               and m.get("training") not in (None, "none") and n not in random]
    if not random or not trained:
        return None
    winners = [t for t in trained
               if all(rank[t]["rank"] < rank[r]["rank"] and r not in rank[t]["tied_with"]
                      for r in random)]
    if winners:
        return (f"Trained weights matter here: {_names(winners)} rank above every random-init "
                f"encoder ({_names(random)}) beyond noise.")
    return (f"No trained encoder separates from the random-init baseline ({_names(random)}) "
            "on this data: its ranking advantage, if any, is within noise.")


def render(db: ResultsDB) -> str | None:
    run_id = latest_gap_run(db)
    if run_id is None:
        return None
    scores = load_scores(db, run_id)
    meta = load_encoders(db, run_id)
    est = {name: estimate_dict(scores, name) for name in meta}
    ranking = load_ranking(db, run_id)
    flagged = load_flagged(db, run_id)
    sentences = [ranking_sentence(ranking, est), floor_sentence(est), domain_sentence(est),
                 coverage_sentence(est, flagged, meta), pretrained_sentence(ranking, meta)]
    items = "".join(f"<li>{s}</li>" for s in sentences if s)
    return (f"<ul class='verdict'>{items}</ul><p class='note'>Generated from run "
            f"{esc(run_id)}'s numbers (95% episode-bootstrap intervals, permutation nulls over "
            f"episodes). Scores follow <i>{esc(PAPER)}</i> (DIS, Action Score), with the "
            "calibrations listed in the README's \"Choices we made\".</p>")


register_section("verdict", anchor=ANCHOR, title=TITLE, kinds=(GAP_KIND,), order=10)(render)
