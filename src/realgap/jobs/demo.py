"""``realgap demo``: the main job on the embedded default, from nothing to a report.

1. Generate the embedded default FrameSet (:data:`realgap.sim.generate.DEMO_CONFIG`: one
   reach task with a proportional expert, the randomized ``sim`` domain, the nominal
   ``sim-nominal`` domain of the same states, and the proxy-real domain at two severities,
   ``real-proxy-mild`` and ``real-proxy-strong``) into ``<out>/frames`` unless it is
   already there (generation is resumable, so an interrupted demo picks up where it
   stopped).
2. Run :func:`realgap.jobs.gap.run_gap` on ``sim`` vs each severity (one run each, in one
   results database; embeddings and trained encoders are cached, so the second run only
   embeds the new real frames) with the encoders that need no download
   (:data:`DEMO_ENCODERS`): raw ``pixels``, a random-init ResNet18, the ImageNet-pretrained
   EfficientNet-Lite0 whose weights install with realgap, and two behaviour-cloning
   encoders realgap trains itself on the sim train episodes, one on the randomized frames,
   one on the nominal frames: "does randomization help the encoder".
3. The report (both runs) is written to ``<out>/report.html``.

The real-proxy frames are rendered by the simulator with other textures, lights, camera
pose and a sensor model: a proxy for real camera frames, labelled as such everywhere.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from realgap.jobs.gap import GapConfig, GapResult, check_config, run_gap

#: Encoders of the demo: all run offline. ``bc-*`` train on the sim train episodes only.
DEMO_ENCODERS: tuple[str, ...] = ("pixels", "resnet18-random", "efficientnet-lite0", "bc-sim",
                                  "bc-sim-nominal")
#: The real side of each gap run: the proxy at two severities (realgap.sim.domains).
DEMO_REAL_DOMAINS: tuple[str, ...] = ("real-proxy-mild", "real-proxy-strong")
DEFAULT_OUT = "realgap-demo"


def _demo_dataset() -> Any:
    from realgap.sim.generate import DEMO_CONFIG

    return DEMO_CONFIG


@dataclass(frozen=True)
class DemoConfig:
    """What ``realgap demo`` runs; the defaults are the README's command."""

    out: str = DEFAULT_OUT
    """Output directory: ``frames/`` (the FrameSet), ``results.duckdb``, ``report.html``."""
    n_boot: int = 200
    """Bootstrap resamples over episodes."""
    seed: int = 0
    """Seed of the gap job (the dataset has its own, fixed in ``dataset``)."""
    encoders: tuple[str, ...] = DEMO_ENCODERS
    """Encoders to compare."""
    real_domains: tuple[str, ...] = DEMO_REAL_DOMAINS
    """Real-proxy severities, one gap run each (domains of ``dataset``)."""
    dataset: Any = field(default_factory=_demo_dataset)
    """The :class:`realgap.sim.generate.GenerateConfig` of the frames (its ``out`` is
    replaced by ``<out>/frames``); tests pass a tiny one."""
    progress: bool = True
    """Progress on stderr."""
    maps: tuple[str, ...] = ("pca",)
    """Embedding maps per encoder (``realgap gap --maps``): PCA only by default, because
    UMAP's first call compiles for ~10-20 s and each map costs seconds more, which the
    demo's 4-minute budget cannot carry; ``realgap gap`` draws both."""


@dataclass(frozen=True)
class DemoResult:
    """One :class:`GapResult` per real-proxy severity, plus the demo's own timings (s)."""

    runs: dict[str, GapResult]
    frameset_hash: str
    seconds: float
    timings: dict[str, float]

    @property
    def last(self) -> GapResult:
        """The run of the strongest severity (the last one run)."""
        return list(self.runs.values())[-1]


def _frames_ready(path: Path, dataset: Any = None) -> bool:
    if dataset is None:
        dataset = _demo_dataset()
    if not (path / "meta.json").exists():
        return False
    try:
        from realgap.data import FrameSet

        fs = FrameSet.open(path)
    except Exception:  # noqa: BLE001 - anything unreadable is regenerated (resumably)
        return False
    want = {(d, t, e) for d in dataset.domains for t in dataset.tasks
            for e in range(dataset.episodes)}
    m = fs.manifest[["domain", "task", "episode"]].drop_duplicates()
    have = {(str(d), str(t), int(e)) for d, t, e in m.itertuples(index=False)}
    return want <= have


def _gap_config(cfg: DemoConfig, frames: Path, real_domain: str) -> GapConfig:
    return GapConfig(encoders=cfg.encoders, out=cfg.out, frames=str(frames), sim_domain="sim",
                     real_domain=real_domain, n_boot=cfg.n_boot, seed=cfg.seed,
                     progress=cfg.progress, maps=cfg.maps)


def run_demo(out: str | Path = DEFAULT_OUT, config: DemoConfig | None = None) -> DemoResult:
    """Generate the default FrameSet if absent, run the gap job per severity, write the
    report."""
    from realgap.errors import ConfigError
    from realgap.sim.contact_sheet import contact_sheet
    from realgap.sim.generate import generate

    cfg = replace(config or DemoConfig(), out=str(out))
    frames = Path(cfg.out) / "frames"
    missing = [d for d in cfg.real_domains if d not in cfg.dataset.domains]
    if missing or not cfg.real_domains:
        raise ConfigError(f"demo: real domains {list(cfg.real_domains)} must be generated "
                          f"domains of the dataset ({', '.join(cfg.dataset.domains)})")
    for real in cfg.real_domains:  # a bad --n-boot fails now, not after generating frames
        check_config(_gap_config(cfg, frames, real))
    t0 = time.perf_counter()
    if not _frames_ready(frames, cfg.dataset):
        if cfg.progress:
            print(f"[realgap demo] generating the embedded default FrameSet in {frames}",
                  file=sys.stderr, flush=True)
        fs = generate(replace(cfg.dataset, out=str(frames)), progress=cfg.progress)
        contact_sheet(fs, frames / "contact_sheet.png")
    t_gen = time.perf_counter() - t0
    from realgap.data import FrameSet

    fs_hash = FrameSet.open(frames).content_hash
    runs: dict[str, GapResult] = {}
    timings = {"generate": t_gen}
    for real in cfg.real_domains:
        t = time.perf_counter()
        runs[real] = run_gap(_gap_config(cfg, frames, real))
        timings[f"gap:{real}"] = time.perf_counter() - t
    return DemoResult(runs=runs, frameset_hash=fs_hash, seconds=time.perf_counter() - t0,
                      timings=timings)
