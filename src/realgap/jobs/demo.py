"""``realgap demo``: the main job on the embedded default, from nothing to a report.

1. Generate the embedded default FrameSet (:func:`realgap.sim.generate.generate_demo`: two
   reach tasks, the randomized ``sim`` domain, the nominal ``sim-nominal`` domain of the
   same states and the ``real-proxy`` domain, head camera) into ``<out>/frames`` unless it
   is already there (generation is resumable, so an interrupted demo picks up where it
   stopped).
2. Run :func:`realgap.jobs.gap.run_gap` on ``sim`` vs ``real-proxy`` with the encoders that
   need no download (:data:`DEMO_ENCODERS`): raw ``pixels``, a random-init ResNet18 and two
   behaviour-cloning encoders realgap trains itself on the sim train episodes, one on the
   randomized frames, one on the nominal frames: "does randomization help the encoder".
3. The report is written to ``<out>/report.html``.

The real-proxy frames are rendered by the simulator with photographic textures and a
sensor model: a proxy for real camera frames, labelled as such everywhere.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from realgap.jobs.gap import GapConfig, GapResult, check_config, run_gap

#: Encoders of the demo: all run offline. ``bc-*`` train on the sim train episodes only.
DEMO_ENCODERS: tuple[str, ...] = ("pixels", "resnet18-random", "bc-sim", "bc-sim-nominal")
DEFAULT_OUT = "realgap-demo"


@dataclass(frozen=True)
class DemoConfig:
    """What ``realgap demo`` runs; the defaults are the README's command."""

    out: str = DEFAULT_OUT
    """Output directory: ``frames/`` (the FrameSet), ``results.duckdb``, ``report.html``."""
    n_boot: int = 200
    """Bootstrap resamples over episodes."""
    seed: int = 0
    """Seed of the gap job (the dataset has its own, fixed in ``DEMO_CONFIG``)."""
    encoders: tuple[str, ...] = DEMO_ENCODERS
    """Encoders to compare."""
    progress: bool = True
    """Progress on stderr."""


def _frames_ready(path: Path) -> bool:
    from realgap.sim.generate import DEMO_CONFIG

    if not (path / "meta.json").exists():
        return False
    try:
        from realgap.data import FrameSet

        fs = FrameSet.open(path)
    except Exception:  # noqa: BLE001 - anything unreadable is regenerated (resumably)
        return False
    want = {(d, t, e) for d in DEMO_CONFIG.domains for t in DEMO_CONFIG.tasks
            for e in range(DEMO_CONFIG.episodes)}
    m = fs.manifest[["domain", "task", "episode"]].drop_duplicates()
    have = {(str(d), str(t), int(e)) for d, t, e in m.itertuples(index=False)}
    return want <= have


def run_demo(out: str | Path = DEFAULT_OUT, config: DemoConfig | None = None) -> GapResult:
    """Generate the default FrameSet if absent, run the gap job on it, write the report."""
    from realgap.sim.generate import generate_demo

    cfg = replace(config or DemoConfig(), out=str(out))
    frames = Path(cfg.out) / "frames"
    gap = GapConfig(encoders=cfg.encoders, out=cfg.out, frames=str(frames), sim_domain="sim",
                    real_domain="real-proxy", n_boot=cfg.n_boot, seed=cfg.seed,
                    progress=cfg.progress)
    check_config(gap)  # a bad --n-boot fails now, not after generating the dataset
    t0 = time.perf_counter()
    if not _frames_ready(frames):
        if cfg.progress:
            print(f"[realgap demo] generating the embedded default FrameSet in {frames}",
                  file=sys.stderr, flush=True)
        generate_demo(frames, progress=cfg.progress)
    t_gen = time.perf_counter() - t0
    result = run_gap(gap)
    timings = dict(result.timings, generate=t_gen)
    return replace(result, timings=timings, seconds=time.perf_counter() - t0)
