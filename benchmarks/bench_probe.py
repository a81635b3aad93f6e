"""Action probe speed (issue 8 item 9): the ridge probe on raw-pixel-sized embeddings.

Times, on one synthetic set of ``--frames`` x ``--dim`` embeddings (40 episodes):

- ``single``: the paper's single-split AS (:func:`realgap.metrics.action_score`), penalty by
  grouped CV inside the train split;
- ``crossfit``: the cross-fitted AS (:func:`realgap.metrics.probe.action_score_crossfit`),
  5 outer folds, each with its nested penalty search;
- ``--floor``: the AS and its floor together (:func:`~realgap.metrics.probe.action_score_with_floor`);
- ``sklearn``: the same cross-fit through a plain scikit-learn route (``RidgeCV``-free:
  ``Ridge`` refitted per inner fold and penalty), the baseline the dual path replaces;
- ``--old``: the single-split AS of the commit before the dual path (``git show``), which
  formed the ``D x D`` matrix ``X^T X`` and took full SVDs of ``n x D`` blocks.

Run: ``python benchmarks/bench_probe.py [--frames 2000] [--dim 12288] [--old] [--sklearn] [--floor]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OLD_COMMIT = "7c278a9"  # the probe before the cross-fit and the dual (Gram) path


def _data(n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((n, d), dtype=np.float32).astype(np.float64)  # pixel-like, in [0, 1)
    y = 3.0 * x[:, :4] @ rng.normal(size=(4, 4)) + rng.normal(size=(n, 4))
    return x, y, np.repeat(np.arange(40), -(-n // 40))[:n]


def _old_module() -> object:
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", f"{OLD_COMMIT}:src/realgap/metrics/probe.py"], cwd=root,
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_probe.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_probe", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["old_probe"] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _sklearn_crossfit(x: np.ndarray, y: np.ndarray, ep: np.ndarray) -> float:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold

    from realgap.metrics.probe import ALPHA_GRID, episode_folds

    fold = episode_folds(ep, 5, rng=0)  # the folds of action_score_crossfit(rng=0)
    err = np.empty(len(x))
    for f in range(5):
        tr, te = fold != f, fold == f
        xm, xsd = x[tr].mean(0), x[tr].std(0)
        xsd[xsd == 0] = 1
        ym, ysd = y[tr].mean(0), y[tr].std(0)
        xs, ys = (x[tr] - xm) / xsd, (y[tr] - ym) / ysd
        cv = [sum(float(((ys[b] - Ridge(alpha=a, fit_intercept=False).fit(xs[i], ys[i])
                          .predict(xs[b])) ** 2).sum())
                  for i, b in GroupKFold(n_splits=4).split(xs, ys, fold[tr])) for a in ALPHA_GRID]
        model = Ridge(alpha=ALPHA_GRID[int(np.argmin(cv))], fit_intercept=False).fit(xs, ys)
        err[te] = ((((y[te] - ym) / ysd) - model.predict((x[te] - xm) / xsd)) ** 2).mean(1)
    return float(np.clip(1 - err.mean(), 0, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=12288)
    ap.add_argument("--old", action="store_true", help="also time the pre-dual single split")
    ap.add_argument("--sklearn", action="store_true", help="also time the plain sklearn cross-fit")
    ap.add_argument("--floor", action="store_true", help="also time AS + floor sharing the folds")
    args = ap.parse_args()
    from realgap.metrics.probe import action_score, action_score_crossfit, action_score_with_floor

    x, y, ep = _data(args.frames, args.dim)
    print(f"embeddings {args.frames} x {args.dim}, 40 episodes, 4 action dims")
    runs = [("single (realgap, dual)", lambda: action_score(x, y, ep, rng=0).score),
            ("crossfit (realgap, dual)", lambda: action_score_crossfit(x, y, ep, rng=0).value)]
    if args.floor:
        runs.append(("crossfit + floor, shared folds",
                     lambda: action_score_with_floor(x, y, ep, rng=0)[1].value))
    if args.sklearn:
        runs.append(("crossfit (plain sklearn Ridge refits)", lambda: _sklearn_crossfit(x, y, ep)))
    if args.old:
        old = _old_module()
        runs.append(("single (before: X^T X, full SVDs)",
                     lambda: old.action_score(x, y, ep, rng=0).score))  # type: ignore[attr-defined]
    for name, fn in runs:
        t = time.perf_counter()
        value = fn()
        print(f"{name:40s} AS {value:.4f}  {time.perf_counter() - t:8.1f} s", flush=True)


if __name__ == "__main__":
    main()
