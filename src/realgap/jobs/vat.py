"""The ``vat`` job: Visual Alignment Testing, end to end (visual-alignment-testing.txt,
section III-C).

Two tasks with the same visual distribution but different motor signals (realgap's
``reach-mug`` / ``reach-box``: the same scene, a different target). The procedure:

1. demonstrations of both tasks (generated with the scripted experts, or ``data``);
2. train pi_A on task A and pi_B on task B end to end (encoder + head);
3. train pi_B' on task B with pi_A's encoder copied in and frozen (the last checkpoint of
   pi_A, as the reference does for its real-world runs, IV-A2); pi_B and pi_B' share the
   training seed, so their heads start from the same weights and see the same batches;
4. roll out pi_B and pi_B' from the same initial states: ``rollouts`` seeds, unseen in
   training, for each of the last ``checkpoints`` checkpoints of both (the reference
   tests several checkpoints, IV-A1); outcome pairs are matched by (checkpoint rank, seed);
5. the one-sided dependent t-test on ``D_i = r_i(pi_B) - r_i(pi_B')`` with threshold
   ``eps`` and level ``alpha`` (equations 4-7; :func:`realgap.stats.vat_ttest`):
   rejecting H0 says pi_A's encoder cannot stand in for pi_B's, i.e. the end-to-end
   encoder takes part in decisions;
6. a FullGrad saliency grid (pytorch-grad-cam; section III-D) of pi_A's and pi_B's
   encoders on the same task-B frames.

``run_vat(VATConfig, out) -> VATResult`` is the composition of those steps:
:func:`prepare_frames`, :func:`train_policies`, :func:`play_pairs`, :func:`paired_test`,
:func:`saliency_grid` (FullGrad: :func:`realgap.explain.fullgrad.fullgrad_maps`) and
:func:`write_vat_run`. Everything lands in the results database as a ``vat`` run (layout:
:mod:`realgap.store.vat`), the saliency grid as a PNG artifact, and the ``vat`` report
section shows both.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from realgap._plot import literal_text, png_bytes, subplots
from realgap.errors import ConfigError, DataError

__all__ = ["SALIENCY_CAPTION", "VATConfig", "VATResult", "fullgrad_maps", "paired_test",
           "play_pairs", "prepare_frames", "run_vat", "saliency_grid", "train_policies",
           "write_vat_run"]


@dataclass(frozen=True)
class VATConfig:
    """Settings of one VAT run (defaults: a CPU-sized run of a few minutes).

    Attributes:
        task_a, task_b: the task pair (same visual distribution, different targets).
        head: ``bc``, ``bc-rnn`` or ``dp-c``.
        encoder: end-to-end encoder of all three policies (``resnet18-e2e``, the
            reference's ResNet18 with GN and spatial softmax, or ``small-e2e``).
        episodes: demonstrations per task (when generating).
        epochs: training epochs of each policy.
        image_size: rendered and encoder image side in px.
        rollouts: paired initial states per checkpoint.
        checkpoints: how many final checkpoints of pi_B / pi_B' to evaluate.
        eps: threshold of H0 (mean(D) <= eps), in success-rate units.
        alpha: significance level.
        seed: seed of data generation and training.
        eval_seed: rollout seeds are ``eval_seed + i`` (demos use other seeds).
        workers: rollout processes.
        data: an existing FrameSet with both tasks (None: generate one in ``out/frames``).
        camera: the policies' camera.
        randomize: factors randomized in the generated demonstrations.
        batch_size, lr: optimisation.
        saliency_frames: rows of the saliency grid.
        metric: the paired performance measure ``r``: ``"success"`` (0/1 per rollout, the
            reference's success rate) or ``"return"`` (the episode's summed dense reward;
            for the reach tasks minus the summed distance to the reach point, m). The
            reference tests its UR5 Reach pair on a continuous measure (validation loss,
            IV-B) rather than success; ``return`` is the rollout analogue, informative
            when small CPU-trained policies rarely reach the 3 cm success radius.
    """

    task_a: str = "reach-mug"
    task_b: str = "reach-box"
    head: str = "bc"
    encoder: str = "resnet18-e2e"
    episodes: int = 20
    epochs: int = 15
    image_size: int = 64
    rollouts: int = 20
    checkpoints: int = 1
    eps: float = 0.0
    alpha: float = 0.05
    seed: int = 0
    eval_seed: int = 50_000
    workers: int = 2
    data: str | None = None
    camera: str = "head"
    randomize: tuple[str, ...] = ()
    batch_size: int = 32
    lr: float = 1e-3
    saliency_frames: int = 4
    metric: str = "success"

    def __post_init__(self) -> None:
        from realgap.errors import UnknownNameError
        from realgap.policy.config import E2E_ENCODERS, head_spec

        try:
            head_spec(self.head)  # the head registry names the close matches
        except UnknownNameError as exc:
            raise ConfigError(f"--head: {exc}") from None
        if self.encoder not in E2E_ENCODERS:
            raise ConfigError(f"--encoder {self.encoder!r}: VAT trains end-to-end encoders; use "
                              f"one of {', '.join(E2E_ENCODERS)}")
        if self.metric not in ("success", "return"):
            raise ConfigError(f"--metric {self.metric!r}: use 'success' or 'return'")
        if self.task_a == self.task_b:
            raise ConfigError(f"--task-a and --task-b are both {self.task_a!r}; VAT needs two tasks")
        # workers too: a bad value would otherwise surface only after the training.
        for name in ("episodes", "epochs", "rollouts", "checkpoints", "saliency_frames",
                     "workers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"--{name} {v!r}: must be a positive integer")
        if self.rollouts * self.checkpoints < 2:
            raise ConfigError("--rollouts x --checkpoints must be >= 2: the paired t-test needs "
                              "at least 2 pairs")
        if self.checkpoints > self.epochs:
            raise ConfigError(f"--checkpoints {self.checkpoints} exceeds --epochs {self.epochs}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha {self.alpha}: must be in (0, 1)")
        if not math.isfinite(self.eps):
            raise ConfigError(f"--eps {self.eps}: must be a finite number (the H0 threshold on "
                              "mean(D))")


@dataclass(frozen=True)
class VATResult:
    """What a VAT run found (``test`` is :class:`realgap.stats.PairedTTest`)."""

    config: VATConfig
    test: Any
    r_b: tuple[float, ...]
    r_b_prime: tuple[float, ...]
    rate_b: Any
    rate_b_prime: Any
    policies: dict[str, str]
    saliency_png: bytes | None
    seconds: float
    run_id: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    returns_b: tuple[float, ...] = ()
    returns_b_prime: tuple[float, ...] = ()


def prepare_frames(cfg: VATConfig, out: Path, progress: bool) -> Path:
    """The demonstrations of both tasks: ``cfg.data`` (checked to hold them) or a FrameSet
    generated with the scripted experts into ``out/frames``."""
    if cfg.data is not None:
        from realgap.data import FrameSet

        fs = FrameSet.open(cfg.data)
        tasks = set(fs.manifest["task"])
        missing = [t for t in (cfg.task_a, cfg.task_b) if t not in tasks]
        if missing:
            raise DataError(f"--data {cfg.data}: no frames of task(s) {', '.join(missing)} "
                            f"(has {', '.join(sorted(tasks))}); generate them or drop --data")
        return Path(cfg.data)
    from realgap.sim.generate import GenerateConfig, generate

    gcfg = GenerateConfig(out=str(out / "frames"), tasks=(cfg.task_a, cfg.task_b),
                          episodes=cfg.episodes, domains=("sim",), randomize=cfg.randomize,
                          granularity="episode", image_size=cfg.image_size,
                          cameras=(cfg.camera,), seed=cfg.seed)
    generate(gcfg, progress=progress)
    return out / "frames"


def train_policies(cfg: VATConfig, data: Path, out: Path, progress: bool) -> dict[str, Path]:
    """pi_A on task A, pi_B on task B, and pi_B' on task B with pi_A's encoder frozen
    (same training seed as pi_B); returns each one's final checkpoint."""
    from realgap.policy import PolicyConfig, TrainConfig, train_policy

    every = max(1, cfg.epochs // cfg.checkpoints)
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                       checkpoint_every=every, domain="sim")

    def pcfg(task: str) -> Any:
        return PolicyConfig(task=task, encoder=cfg.encoder, head=cfg.head, camera=cfg.camera,
                            image_size=cfg.image_size)

    pa = train_policy(data, out / "pi_A", pcfg(cfg.task_a), tcfg, progress=progress)
    pb = train_policy(data, out / "pi_B", pcfg(cfg.task_b), tcfg, progress=progress)
    pbp = train_policy(data, out / "pi_B_prime", pcfg(cfg.task_b), tcfg,
                       encoder_from=pa.checkpoint, progress=progress)
    return {"pi_A": Path(pa.checkpoint), "pi_B": Path(pb.checkpoint),
            "pi_B'": Path(pbp.checkpoint)}


def play_pairs(cfg: VATConfig, out: Path, progress: bool) -> dict[str, list[Any]]:
    """Roll out the last ``cfg.checkpoints`` checkpoints of pi_B and pi_B' from the same
    initial states; ``{"pi_B": outcomes, "pi_B'": outcomes}`` matched by position."""
    from realgap.policy.checkpoint import list_checkpoints
    from realgap.policy.episodes import EnvSpec, EpisodeSpec, run_episodes

    cks_b = list_checkpoints(out / "pi_B")[-cfg.checkpoints:]
    cks_bp = list_checkpoints(out / "pi_B_prime")[-cfg.checkpoints:]
    if len(cks_b) < cfg.checkpoints or len(cks_bp) < cfg.checkpoints:
        raise DataError(f"{out}: expected {cfg.checkpoints} checkpoints of pi_B and pi_B', found "
                        f"{len(cks_b)} and {len(cks_bp)}")
    spec = EnvSpec(task=cfg.task_b, image_size=cfg.image_size, cameras=(cfg.camera,))
    seeds = [cfg.eval_seed + i for i in range(cfg.rollouts)]
    plan = [(label, EpisodeSpec(s, {}, f"checkpoint-{rank}:{ck.stem}", i, policy=str(ck)))
            for rank, (cb, cbp) in enumerate(zip(cks_b, cks_bp, strict=True))
            for label, ck in (("pi_B", cb), ("pi_B'", cbp)) for i, s in enumerate(seeds)]
    played = run_episodes(None, spec, [e for _, e in plan], workers=cfg.workers,
                          progress=progress, desc="rollout pi_B, pi_B'")
    outcomes: dict[str, list[Any]] = {"pi_B": [], "pi_B'": []}
    for (label, _), o in zip(plan, played, strict=True):
        outcomes[label].append(o)
    if [o.init_digest for o in outcomes["pi_B"]] != [o.init_digest for o in outcomes["pi_B'"]]:
        raise DataError("pi_B and pi_B' met different initial states; the paired test needs "
                        "the same ones (a bug in realgap: please report it)")
    return outcomes


def paired_test(cfg: VATConfig, outcomes: dict[str, list[Any]]
                ) -> tuple[Any, tuple[float, ...], tuple[float, ...]]:
    """The one-sided dependent t-test on ``D_i = r_i(pi_B) - r_i(pi_B')`` (equations 4-7),
    with ``r`` the configured measure; returns the test and both measure vectors."""
    from realgap.stats import vat_ttest

    def measure(o: Any) -> float:
        return float(o.success) if cfg.metric == "success" else float(o.ret)

    r_b = tuple(measure(o) for o in outcomes["pi_B"])
    r_bp = tuple(measure(o) for o in outcomes["pi_B'"])
    return vat_ttest(np.asarray(r_b), np.asarray(r_bp), eps=cfg.eps, alpha=cfg.alpha), r_b, r_bp


def run_vat(cfg: VATConfig, out: str | Path, *, progress: bool = True) -> VATResult:
    """Run the whole procedure (module docstring) into ``out`` and its results DB."""
    from realgap.stats import success_rate

    out = Path(out)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    data = prepare_frames(cfg, out, progress)
    timings["data"] = time.perf_counter() - t0
    t = time.perf_counter()
    policies = train_policies(cfg, data, out, progress)
    timings["train"] = time.perf_counter() - t
    t = time.perf_counter()
    outcomes = play_pairs(cfg, out, progress)
    timings["rollouts"] = time.perf_counter() - t
    test, r_b, r_bp = paired_test(cfg, outcomes)
    t = time.perf_counter()
    png = saliency_grid(out / "pi_A", out / "pi_B", data, cfg)
    timings["saliency"] = time.perf_counter() - t
    ks = (sum(o.success for o in outcomes["pi_B"]), sum(o.success for o in outcomes["pi_B'"]))
    res = VATResult(
        cfg, test, r_b, r_bp, success_rate(ks[0], len(r_b)), success_rate(ks[1], len(r_bp)),
        {k: str(v) for k, v in policies.items()}, png, time.perf_counter() - t0,
        timings=timings, returns_b=tuple(o.ret for o in outcomes["pi_B"]),
        returns_b_prime=tuple(o.ret for o in outcomes["pi_B'"]))
    return write_vat_run(res, out, outcomes, data)


def write_vat_run(res: VATResult, out: Path, outcomes: dict[str, list[Any]], data: Path) -> VATResult:
    """Write a ``vat`` run: subjects pi_A / pi_B / pi_B'; ``success_rate`` scores of pi_B
    and pi_B' (k/n, Wilson, ``extra`` successes/trials); subject ``vat`` with metrics
    ``t`` (n = pairs, ``extra`` = the whole test: critical, eps, alpha, p, decision, ...),
    ``critical``, ``mean_diff`` and ``p_value``; per-trial outcomes; the saliency PNG
    as artifact ``vat_saliency``."""
    from realgap.data import FrameSet
    from realgap.policy.checkpoint import load_checkpoint
    from realgap.stats import bootstrap_ci
    from realgap.store import ResultsDB
    from realgap.store.common import Outcome
    from realgap.store.vat import PI_B, PI_B_PRIME, VatRate, VatRecord, write_vat

    policies = {}
    for label, path in res.policies.items():
        ck = load_checkpoint(path)
        policies[label] = {"checkpoint": path, "task": ck["task"],
                           "encoder_origin": ck.get("encoder_origin"), "head": res.config.head,
                           "epoch": ck["epoch"], "final_loss": (ck.get("losses") or [None])[-1]}
    rates = {label: VatRate(r.successes, r.trials, r.rate, r.lo, r.hi)
             for label, r in ((PI_B, res.rate_b), (PI_B_PRIME, res.rate_b_prime))}
    returns = {}
    for label, oc in outcomes.items():
        rets = np.array([o.ret for o in oc], dtype=np.float64)
        # one rollout = one episode, the resampling unit; seeded, never widened
        returns[label] = bootstrap_ci(np.mean, rets, groups=np.arange(rets.size), n_boot=2000, rng=0)
    rec = VatRecord(
        f"VAT {res.config.task_a} -> {res.config.task_b} ({res.config.head})",
        {**asdict(res.config), "data": str(data), "policies": res.policies,
         "timings_s": {k: round(v, 1) for k, v in res.timings.items()}},
        policies, rates, returns, {**res.test.as_dict(), "metric": res.config.metric},
        {label: tuple(Outcome.from_row(o.row()) for o in oc) for label, oc in outcomes.items()},
        res.saliency_png or None, SALIENCY_CAPTION, FrameSet.open(data).content_hash)
    with ResultsDB(out) as db:
        run_id = write_vat(db, rec).run_id
    return replace(res, run_id=run_id)


SALIENCY_CAPTION = (
    "FullGrad (pytorch-grad-cam) of each end-to-end encoder inside its own policy, on the same "
    "task-B frames. The explained scalar is the L2 norm of the policy's normalised action "
    "(for DP-C: of the denoiser's first-step output from fixed noise); FullGrad sums "
    "|input x input-gradient| and |bias x gradient| of every convolution. Left: frame; "
    "middle: pi_A's encoder (trained on task A); right: pi_B's encoder (trained on task B).")


@literal_text
def saliency_grid(dir_a: Path, dir_b: Path, data: Path, cfg: VATConfig) -> bytes:
    """The FullGrad grid PNG: rows = task-B frames, columns = frame, pi_A's encoder, pi_B's."""
    from realgap.data import FrameSet
    from realgap.explain.grid import overlay
    from realgap.policy.model import prepare_images
    from realgap.policy.predictor import load_policy

    fs = FrameSet.open(data).select(domain="sim", task=cfg.task_b)
    man = fs.manifest.reset_index(drop=True)
    first = np.flatnonzero(man["step"].to_numpy() == 0)
    rng = np.random.default_rng(cfg.seed)
    rows = np.sort(rng.choice(first, size=min(cfg.saliency_frames, len(first)), replace=False))
    # a few steps into the episode the arm has started towards its target
    rows = np.minimum(rows + 3, len(man) - 1)
    imgs = fs.images(cfg.camera, index=rows)
    states = fs.states()[rows]
    from realgap.explain.fullgrad import fullgrad_maps

    maps = []
    for d in (dir_a, dir_b):
        pol = load_policy(d)
        maps.append(fullgrad_maps(pol, prepare_images(imgs, pol.cfg.image_size), states))
    small = prepare_images(imgs, maps[0].shape[-1]).permute(0, 2, 3, 1).numpy()
    n = len(rows)
    fig, axes = subplots(n, 3, figsize=(6.0, 2.0 * n), squeeze=False)
    titles = ("frame", f"pi_A encoder ({cfg.task_a})", f"pi_B encoder ({cfg.task_b})")
    for i in range(n):
        panels = (small[i], overlay(small[i], maps[0][i]), overlay(small[i], maps[1][i]))
        for j, p in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(p)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
    return png_bytes(fig)


def fullgrad_maps(policy: Any, images_u8: Any, states: np.ndarray) -> np.ndarray:
    """FullGrad maps of a policy's encoder (moved to :mod:`realgap.explain.fullgrad`)."""
    from realgap.explain.fullgrad import fullgrad_maps as maps

    return maps(policy, images_u8, states)


#: The old private name of :func:`write_vat_run`.
_write = write_vat_run
