"""Generate paired sim / target-domain datasets from the tabletop tasks into a FrameSet.

:func:`generate` runs each task's scripted expert episode by episode. At every step it
records the simulator's observation (the randomized ``sim`` domain) and renders the very
same simulator state in every other requested domain through
``env.unwrapped.render_domain(name)``:

- ``sim``: the environment's own frames, with the requested randomization factors;
- ``sim-nominal``: the same state with the default (nominal) appearance, so a factor's
  effect can be measured against an unrandomized reference;
- ``real-proxy`` (= ``real-proxy-strong``) and ``real-proxy-mild``: photographic
  textures (strong only), other lighting, an offset camera and a sensor model
  (:mod:`realgap.sim.domains` says exactly what differs between the two severities).
  They are *proxies* for real camera frames, not real data, and labelled so by default. Relabel it (for a
  pipeline that expects ``real``) with ``domain_labels={"real-proxy": "real"}`` (CLI:
  ``--domain-label real-proxy=real``); the frames' ``factors`` keep the rendering domain
  under ``"render_domain"`` and ``source`` names the generator, so the provenance stays
  honest whatever the label.

Frames rendered from one simulator state share a ``pair_id`` (``task/seed/episode/step``),
which is what paired metrics and the contact sheet join on.

Seeding (same seed, same FrameSet content hash): episode ``e`` of task ``k`` resets the
environment with ``SeedSequence([seed, crc32(k), e])``, so each episode depends only on
the seed, the task name and its number, never on the episodes generated before it. That
is what makes generation resumable: rerunning the same command skips the episodes already
on disk (:meth:`FrameSetWriter.completed_episodes`) and regenerates any whose write was
interrupted, producing the same bytes it would have produced in one go. Each domain's
episode is written atomically, so an interrupt leaves complete episodes only.

Expert outcomes (success, steps) are written per episode, atomically, to
``<out>/expert_outcomes/<task>--<episode>.json`` *before* the episode's frames, so every
complete episode on disk has its outcome whatever kills the process (kill -9 included);
``generate.json`` gathers them (:func:`load_outcomes`) whenever it is written.
"""

from __future__ import annotations

import os
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from realgap import __version__
from realgap._gl import headless_gl  # re-exported from its old home here
from realgap.errors import ConfigError
from realgap.sim.domains import DOMAINS, PROXY_LOOKS, PROXY_SHADOWS
from realgap.sim.factor_config import GRANULARITIES
from realgap.sim.factors import FACTOR_CLASSES, FACTOR_NAMES
from realgap.sim.fidelity import FIDELITY
from realgap.sim.scene import CAMERAS
from realgap.sim.tasks import TASKS

__all__ = [
    "DEFAULT_DEMO_OUT",
    "DEMO_CONFIG",
    "GENERATOR",
    "RENDER_DOMAINS",
    "GenerateConfig",
    "episode_seed",
    "generate",
    "generate_demo",
    "load_outcomes",
]

#: Generator name recorded in every frame's ``source``.
GENERATOR = "realgap.sim.generate"

#: Physics presets of :attr:`GenerateConfig.physics`: name -> fixed PHYS factor range
#: (``None``: the model's own physics). ``distorted`` is the reference's stress test
#: (vla-domain-randomization-study.txt 3.2.4 and 0.B.3.2: friction reduced, restitution
#: raised, gravity lowered, "relatively extreme values"; the exact numbers did not survive
#: in our copy of the text): gravity x0.4, sliding friction x0.2, contact damping ratio
#: 0.1 for the task objects (they bounce), masses unchanged. A range of one value is a
#: fixed setting, recorded in every frame's ``PHYS`` factor.
PHYSICS_PRESETS: dict[str, dict[str, tuple[float, float]] | None] = {
    "nominal": None,
    "distorted": {"gravity": (0.4, 0.4), "friction": (0.2, 0.2), "dampratio": (0.1, 0.1),
                  "mass": (1.0, 1.0)},
}
#: Domains this generator can render (:data:`realgap.sim.domains.DOMAINS`); the first is
#: the environment's own.
RENDER_DOMAINS: tuple[str, ...] = DOMAINS
#: Factors that change only how a state looks (``Factor.visual``: BG, LT, CP); the rest
#: change the state itself.
APPEARANCE_FACTORS: tuple[str, ...] = tuple(n for n in FACTOR_NAMES if FACTOR_CLASSES[n].visual)


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate and where (see the module docstring for seeding and domains)."""

    out: str
    """Output FrameSet directory (created; an existing FrameSet there is resumed)."""
    tasks: tuple[str, ...] = ("reach-mug",)
    """Task names of :data:`realgap.sim.TASKS`."""
    episodes: int = 20
    """Episodes per task (>= 1); each is written once per domain."""
    domains: tuple[str, ...] = ("sim", "real-proxy")
    """Rendering domains, a subset of :data:`RENDER_DOMAINS`."""
    randomize: tuple[str, ...] = ("BG", "LT", "CP")
    """Randomization factors of the ``sim`` domain (BG, LT, TD, CP, TH, PHYS)."""
    granularity: str = "frame"
    """``frame`` (resample every step) or ``episode`` (sample at reset); feasibility
    factors (TD, TH) stay episode-wise whatever is asked, as in the reference."""
    fidelity: str = "low"
    """Rendering fidelity preset: ``low``, ``medium`` or ``high``."""
    image_size: int = 128
    """Square image side, pixels (16..1024)."""
    cameras: tuple[str, ...] = ("head",)
    """Cameras to record (``head``, ``wrist``)."""
    seed: int = 0
    """Master seed (>= 0): same seed, same FrameSet content hash."""
    domain_labels: tuple[tuple[str, str], ...] = ()
    """``(render domain, stored label)`` pairs, e.g. ``(("real-proxy", "real"),)``."""
    max_steps: int | None = None
    """Cap on steps per episode (None: the task's own limit)."""
    record_every: int = 1
    """Record every k-th control step (the expert still acts at every step, 20 Hz). A
    frame's ``pair_id`` keeps its control-step number; the manifest's ``step`` counts
    recorded frames. Consecutive frames of one episode are nearly alike, so a stride
    keeps the episodes (what intervals resample) and drops redundant frames."""
    proxy_shadows: str = "high"
    """Shadow quality of the proxy-real domains: ``off``, ``low`` (256-texel map) or
    ``high`` (the fidelity's map, 1024 texels at ``low``); see :mod:`realgap.sim.domains`."""
    physics: str = "nominal"
    """Simulator physics of every episode: ``nominal`` or ``distorted`` (the reference's
    stress test, :data:`PHYSICS_PRESETS`; expert and frames then live in that physics)."""

    def __post_init__(self) -> None:
        for name in ("tasks", "domains", "randomize", "cameras"):
            val = getattr(self, name)
            if isinstance(val, str):  # "a,b" from a caller that did not split
                val = tuple(s.strip() for s in val.split(",") if s.strip())
            object.__setattr__(self, name, tuple(val))
        labels = self.domain_labels
        if isinstance(labels, Mapping):
            labels = tuple(labels.items())
        object.__setattr__(self, "domain_labels", tuple((str(a), str(b)) for a, b in labels))

    def label(self, domain: str) -> str:
        """The label ``domain`` is stored under."""
        return dict(self.domain_labels).get(domain, domain)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (recorded beside the FrameSet as ``generate.json``)."""
        d = asdict(self)
        d["domain_labels"] = dict(self.domain_labels)
        return d


def _int_like(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_writable(out: str) -> Path:
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {out}: exists and is a file; choose a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--out {out}: cannot write there ({exc.strerror or exc}); "
            "choose a writable directory"
        ) from None
    return path


def validate_config(cfg: GenerateConfig) -> None:
    """Check every field; raise :class:`ConfigError`/``UnknownNameError`` naming it."""
    if not cfg.tasks:
        raise ConfigError("--task: no task given; pass e.g. --task reach-mug")
    for task in cfg.tasks:
        TASKS.get(task)  # UnknownNameError with close matches
    if not _int_like(cfg.episodes) or cfg.episodes < 1:
        raise ConfigError(f"--episodes: got {cfg.episodes!r}, expected an integer >= 1")
    if not cfg.domains:
        raise ConfigError("--domains: no domain given; pass e.g. --domains sim,real-proxy")
    for d in cfg.domains:
        if d not in RENDER_DOMAINS:
            raise ConfigError(
                f"--domains: unknown domain {d!r}; choose from {', '.join(RENDER_DOMAINS)} "
                "(relabel with --domain-label real-proxy=real)"
            )
    if len(set(cfg.domains)) != len(cfg.domains):
        raise ConfigError(f"--domains: repeated domain in {','.join(cfg.domains)}")
    for f in cfg.randomize:
        if f not in FACTOR_NAMES:
            raise ConfigError(
                f"--randomize: unknown factor {f!r}; choose from {', '.join(FACTOR_NAMES)}"
            )
    if cfg.granularity not in GRANULARITIES:
        raise ConfigError(
            f"--granularity: got {cfg.granularity!r}, expected one of {', '.join(GRANULARITIES)}"
        )
    if cfg.fidelity not in FIDELITY:
        raise ConfigError(
            f"--fidelity: got {cfg.fidelity!r}, expected one of {', '.join(FIDELITY)}"
        )
    for cam in cfg.cameras:
        if cam not in CAMERAS:
            raise ConfigError(f"--cameras: unknown camera {cam!r}; choose from "
                              f"{', '.join(CAMERAS)}")
    if not _int_like(cfg.image_size) or not 16 <= cfg.image_size <= 1024:
        raise ConfigError(f"--image-size: got {cfg.image_size!r}, expected 16..1024 pixels")
    if not cfg.cameras:
        raise ConfigError("--cameras: no camera given; pass e.g. --cameras head")
    if not _int_like(cfg.seed) or cfg.seed < 0:
        raise ConfigError(f"--seed: got {cfg.seed!r}, expected an integer >= 0")
    if cfg.max_steps is not None and (not _int_like(cfg.max_steps) or cfg.max_steps < 1):
        raise ConfigError(f"--max-steps: got {cfg.max_steps!r}, expected an integer >= 1")
    if not _int_like(cfg.record_every) or cfg.record_every < 1:
        raise ConfigError(f"--record-every: got {cfg.record_every!r}, expected an integer >= 1")
    if cfg.proxy_shadows not in PROXY_SHADOWS:
        raise ConfigError(f"--proxy-shadows: got {cfg.proxy_shadows!r}, expected one of "
                          f"{', '.join(PROXY_SHADOWS)}")
    if cfg.physics not in PHYSICS_PRESETS:
        raise ConfigError(f"--physics: got {cfg.physics!r}, expected one of "
                          f"{', '.join(PHYSICS_PRESETS)}")
    if cfg.physics != "nominal" and "PHYS" in cfg.randomize:
        raise ConfigError(f"--physics {cfg.physics} fixes PHYS; leave PHYS out of --randomize")
    for src, dst in cfg.domain_labels:
        if src not in cfg.domains:
            raise ConfigError(
                f"--domain-label {src}={dst}: {src!r} is not among the generated domains "
                f"{','.join(cfg.domains)}"
            )
        if not dst or any(c in dst for c in "/\\=,"):
            raise ConfigError(f"--domain-label {src}={dst}: the label must be a plain name")
    labels = [cfg.label(d) for d in cfg.domains]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--domain-label: two domains map to one label ({labels})")


def episode_seed(seed: int, task: str, episode: int) -> int:
    """Reset seed of one episode: ``SeedSequence([seed, crc32(task), episode])``, 32 bits."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(task.encode()), int(episode)])
    return int(ss.generate_state(1)[0])


def pair_id(task: str, seed: int, episode: int, step: int) -> str:
    """The id shared by the frames of one simulator state across domains."""
    return f"{task}/{seed}/{episode}/{step}"


def _domain_factors(env: Any, base: dict[str, Any], domain: str) -> dict[str, Any]:
    """Factor values behind a frame of ``domain`` rendered from the current sim state.

    ``sim`` frames carry every factor's current value. ``sim-nominal`` frames carry the
    same state factors (TD, TH, PHYS) with the appearance factors (BG, LT, CP) at their
    defaults. ``real-proxy`` frames carry the state factors only: their appearance is
    the fixed proxy look and sensor (recorded once in ``generate.json``), not a factor.
    """
    if domain == "sim":
        return dict(base)
    state = {k: v for k, v in base.items() if k not in APPEARANCE_FACTORS}
    if domain == "sim-nominal":
        factors = getattr(env.unwrapped, "factors", {})
        nominal = {k: factors[k].default_values() for k in APPEARANCE_FACTORS
                   if k in base and k in factors}
        return {**nominal, **state}
    return state


def _run_episode(
    env: Any, expert: Any, cfg: GenerateConfig, task: str, episode: int
) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict[str, list[dict[str, Any]]],
           list[np.ndarray], list[np.ndarray], bool, list[int], int]:
    """Roll out one expert episode; collect every domain's frames of every recorded state.

    Returns frames, factors, actions and states of the recorded steps, the success flag,
    the recorded control-step numbers and the episode's number of control steps."""
    obs, info = env.reset(seed=episode_seed(cfg.seed, task, episode))
    frames: dict[str, dict[str, list[np.ndarray]]] = {
        d: {c: [] for c in cfg.cameras} for d in cfg.domains
    }
    factors: dict[str, list[dict[str, Any]]] = {d: [] for d in cfg.domains}
    actions: list[np.ndarray] = []
    states: list[np.ndarray] = []
    recorded: list[int] = []
    limit = cfg.max_steps or 10**9  # the env truncates at its own limit too
    success = bool(info.get("success", False))
    n_steps = 0
    for step in range(limit):
        action = np.asarray(expert(obs), dtype=np.float64)
        n_steps = step + 1
        if step % cfg.record_every:
            obs, _reward, terminated, truncated, info = env.step(action)
            success = success or bool(info.get("success", False))
            if terminated or truncated:
                break
            continue
        recorded.append(step)
        base = dict(info.get("factors", {}))
        for d in cfg.domains:
            # Every domain, "sim" included, renders here: the env observes no images
            # (built with cameras=()), so steps between recorded ones render nothing.
            imgs = env.unwrapped.render_domain(d, cfg.cameras)
            for c in cfg.cameras:
                frames[d][c].append(imgs[c])
            factors[d].append({**_domain_factors(env, base, d), "render_domain": d})
        actions.append(action)
        states.append(np.asarray(obs.get("state", np.zeros(0)), dtype=np.float64))
        obs, _reward, terminated, truncated, info = env.step(action)
        success = success or bool(info.get("success", False))
        if terminated or truncated:
            break
    return frames, factors, actions, states, success, recorded, n_steps


#: Config fields that must match to resume into an existing generated FrameSet (tasks,
#: episodes and domains may grow; every frame depends only on these and its episode).
RESUME_KEYS: tuple[str, ...] = ("randomize", "granularity", "fidelity", "image_size",
                                "cameras", "seed", "max_steps", "proxy_shadows",
                                "record_every", "physics")
#: Values a record written before a setting existed implies (the behaviour back then).
RESUME_DEFAULTS: dict[str, Any] = {"proxy_shadows": "high", "record_every": 1,
                                   "physics": "nominal"}
RECORD_NAME = "generate.json"
#: Directory of the per-episode expert outcomes (one JSON file per task and episode).
OUTCOMES_DIR = "expert_outcomes"


def _outcome_path(out: Path, task: str, episode: int) -> Path:
    from urllib.parse import quote

    return out / OUTCOMES_DIR / f"{quote(task, safe='_.')}--{int(episode):09d}.json"


def _write_outcome(out: Path, task: str, episode: int, outcome: dict[str, Any]) -> None:
    from realgap.data._format import write_json_atomic

    path = _outcome_path(out, task, episode)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"task": task, "episode": int(episode), **outcome})


def load_outcomes(out: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Every per-episode expert outcome under ``out``: ``{"task/episode": {"success",
    "steps", "frames"}}`` (control steps, recorded frames). Unreadable files (a write cut short cannot leave one: each is renamed
    into place) are skipped, so the episode they belong to counts as unrecorded."""
    import json

    res: dict[str, dict[str, Any]] = {}
    folder = Path(out) / OUTCOMES_DIR
    if not folder.is_dir():
        return res
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            key = f"{rec['task']}/{int(rec['episode'])}"
            res[key] = {"success": bool(rec["success"]), "steps": int(rec["steps"]),
                        "frames": int(rec.get("frames", rec["steps"]))}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return res


def _load_record(out: Path, cfg: GenerateConfig, has_frameset: bool) -> dict[str, Any]:
    """The existing ``generate.json`` (checked against ``cfg``) or a fresh record."""
    import json

    path = out / RECORD_NAME
    if not path.is_file():
        if has_frameset:
            raise ConfigError(
                f"--out {out}: holds a FrameSet that realgap generate did not write (no "
                f"{RECORD_NAME}); choose another output directory"
            )
        return {"episodes": {}}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        old = record["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable generation record ({exc}); delete the "
                          "directory and generate again") from None
    new = cfg.to_dict()
    for key in RESUME_KEYS:
        a, b = old.get(key, RESUME_DEFAULTS.get(key)), new[key]
        if (list(a) if isinstance(a, (list, tuple)) else a) != (
                list(b) if isinstance(b, (list, tuple)) else b):
            raise ConfigError(
                f"--out {out}: was generated with {key}={a!r}, this run asks {key}={b!r}; "
                "rerun with the same settings to resume, or choose another --out"
            )
    old_labels = dict(old.get("domain_labels") or {})
    for dom, lab in old_labels.items():
        if dom in cfg.domains and cfg.label(dom) != lab:
            raise ConfigError(
                f"--out {out}: stores {dom!r} as {lab!r}, this run asks {cfg.label(dom)!r}; "
                f"pass --domain-label {dom}={lab} to resume"
            )
    record.setdefault("episodes", {})
    return record


def _merged_config(record: dict[str, Any], cfg: GenerateConfig) -> dict[str, Any]:
    """The record's config grown by this run's tasks, domains, labels and episodes."""
    new = cfg.to_dict()
    old = record.get("config") or new
    merged = dict(new)
    merged["tasks"] = list(dict.fromkeys([*old.get("tasks", []), *new["tasks"]]))
    merged["domains"] = list(dict.fromkeys([*old.get("domains", []), *new["domains"]]))
    merged["domain_labels"] = {**(old.get("domain_labels") or {}), **new["domain_labels"]}
    merged["episodes"] = max(int(old.get("episodes", 0)), int(new["episodes"]))
    return merged


def expert_success(record: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per task ``{"success": k, "episodes": n}`` over every episode in a record."""
    out: dict[str, dict[str, int]] = {}
    for key, ep in sorted(record.get("episodes", {}).items()):
        task = key.rsplit("/", 1)[0]
        st = out.setdefault(task, {"success": 0, "episodes": 0})
        st["episodes"] += 1
        st["success"] += int(bool(ep["success"]))
    return out


def generate(cfg: GenerateConfig, progress: bool = True) -> Any:
    """Generate (or resume) the FrameSet described by ``cfg``; return it opened.

    Resuming into an existing output requires the same :data:`RESUME_KEYS` settings
    (tasks, episodes and domains may grow); otherwise :class:`ConfigError`.

    Returns:
        :class:`realgap.data.FrameSet` at ``cfg.out``. ``generate.json`` beside it holds
        the merged config, the realgap version, the proxy-real looks and sensors, every
        episode's expert outcome (``success``, ``steps``) and per-task counts
        ``expert_success`` (k successes of n episodes). The outcomes are also kept one
        file per episode under ``expert_outcomes/`` (see the module docstring).
    """
    headless_gl()
    validate_config(cfg)
    out = _check_writable(cfg.out)
    from realgap.data import FrameSet, FrameSetWriter
    from realgap.sim import expert_for, make
    labels = {d: cfg.label(d) for d in cfg.domains}
    version_source = f"{GENERATOR} {__version__}"
    t0 = time.perf_counter()
    n_frames = 0
    # Check the settings before the writer touches anything in ``out``.
    record = _load_record(out, cfg, (out / "meta.json").is_file())
    record["config"] = _merged_config(record, cfg)
    with FrameSetWriter(out, source=version_source, resume=True,
                             domains=tuple(labels.values())) as writer:
        done = writer.completed_episodes()
        _write_record(out, record)
        todo = [
            (task, ep) for task in cfg.tasks for ep in range(cfg.episodes)
            if any((labels[d], task, ep) not in done for d in cfg.domains)
        ]
        total = len(cfg.tasks) * cfg.episodes
        bar = tqdm(total=total, initial=total - len(todo), desc="generate", unit="ep",
                   disable=not progress)
        envs: dict[str, Any] = {}
        try:
            for task, ep in todo:
                env = envs.get(task)
                if env is None:
                    extra: dict[str, Any] = ({} if cfg.max_steps is None
                                             else {"max_steps": cfg.max_steps})
                    randomize = tuple(cfg.randomize)
                    phys = PHYSICS_PRESETS[cfg.physics]
                    if phys is not None:  # a fixed setting: PHYS "randomized" over one value
                        randomize += ("PHYS",)
                        extra["factor_ranges"] = {"PHYS": dict(phys)}
                    env = envs[task] = make(
                        task, randomize=randomize, granularity=cfg.granularity,
                        # no observation images: _run_episode renders each recorded
                        # state in every domain itself, so the unrecorded steps (3 of 4
                        # at record_every=4) cost no render (half of generation's time)
                        fidelity=cfg.fidelity, image_size=cfg.image_size,
                        cameras=(), domain="sim", seed=cfg.seed,
                        proxy_shadows=cfg.proxy_shadows, **extra,
                    )
                expert = expert_for(env)  # fresh per episode: experts may keep state
                frames, facs, acts, sts, ok, rec, n_steps = _run_episode(env, expert, cfg,
                                                                          task, ep)
                outcome = {"success": ok, "steps": n_steps, "frames": len(acts)}
                # Outcome first, frames second: a complete episode always has its outcome
                # (an outcome without frames is rewritten, identically, on resume).
                _write_outcome(out, task, ep, outcome)
                src = f"{version_source} task={task} seed={cfg.seed}"
                pids = [pair_id(task, cfg.seed, ep, t) for t in rec]
                for d in cfg.domains:
                    if (labels[d], task, ep) in done:
                        continue
                    writer.add_episode(
                        domain=labels[d], task=task, episode=ep,
                        images={c: np.stack(v) for c, v in frames[d].items()},
                        actions=np.stack(acts), states=np.stack(sts),
                        factors=facs[d], pair_ids=pids, source=src,
                    )
                    n_frames += len(acts)
                record["episodes"][f"{task}/{ep}"] = outcome
                bar.update(1)
                bar.set_postfix(task=task, frames=n_frames)
        finally:
            bar.close()
            for env in envs.values():
                env.close()
            record["last_run"] = {"seconds": round(time.perf_counter() - t0, 2),
                                  "episodes": len(todo), "frames_written": n_frames}
            _write_record(out, record)
    return FrameSet.open(out)


def _write_record(out: Path, record: dict[str, Any]) -> None:
    from realgap.data._format import write_json_atomic

    record["episodes"] = {**record.get("episodes", {}), **load_outcomes(out)}
    record.update({"generator": GENERATOR, "realgap_version": __version__,
                   "expert_success": expert_success(record)})
    proxies = [d for d in record["config"]["domains"] if d in PROXY_LOOKS]
    if proxies:
        from realgap.sim.domains import PHOTO_PREFERENCE

        shadows = record["config"].get("proxy_shadows", RESUME_DEFAULTS["proxy_shadows"])
        record["real_proxy"] = {
            d: {"stored_as": record["config"]["domain_labels"].get(d, d),
                "note": "rendered proxy for real camera frames, not real data",
                "look": asdict(PROXY_LOOKS[d]), "photographs": PHOTO_PREFERENCE,
                "camera_model": PROXY_LOOKS[d].camera.to_dict(),
                "shadows": shadows, "shadow_map": PROXY_SHADOWS[shadows]}
            for d in proxies}
    write_json_atomic(out / RECORD_NAME, record)


#: The embedded default dataset of ``realgap generate --demo`` (the main job's input),
#: designed so that the answer can be read (numbers in README "Choices we made"):
#:
#: - one task, ``reach-mug``, whose expert is proportional and rarely saturates
#:   (:data:`realgap.sim.experts.REACH_GAIN`), so the action is a linear function of where
#:   the mug and the gripper are: a ridge probe on the recorded state reaches AS ~0.98;
#: - ``sim`` randomizes background and lights per episode (BG, LT); the camera pose is not
#:   randomized, so within one domain a pixel position always means the same place;
#: - ``sim-nominal``: the same states unrandomized (the ``bc-sim-nominal`` encoder's data);
#: - ``real-proxy-mild`` and ``real-proxy-strong``: the two gap severities
#:   (:mod:`realgap.sim.domains`), with the cheap 256-texel shadow map;
#: - 64 px head camera (the BC encoders train at 64 px), 150 episodes (the intervals
#:   resample episodes, so their width shrinks with the number of episodes, not frames;
#:   30 stay unseen by the BC encoders), every 5th control step recorded (~4.4 frames per
#:   episode: consecutive frames are near duplicates, and the stride keeps embedding and
#:   training time within the demo's 4 minutes on 2 cores; 100 episodes at stride 2 gave
#:   AS(sim) intervals up to 0.21 wide for 1.6x the frames).
DEFAULT_DEMO_OUT = "realgap-demo/frames"
DEMO_CONFIG = GenerateConfig(
    out=DEFAULT_DEMO_OUT,
    tasks=("reach-mug",),
    episodes=150,
    domains=("sim", "sim-nominal", "real-proxy-mild", "real-proxy-strong"),
    randomize=("BG", "LT"),
    granularity="episode",
    fidelity="low",
    image_size=64,
    cameras=("head",),
    seed=0,
    record_every=5,
    proxy_shadows="low",
)


def generate_demo(out: str | os.PathLike[str] = DEFAULT_DEMO_OUT, progress: bool = True) -> Any:
    """Write the demo FrameSet (:data:`DEMO_CONFIG`) to ``out``, with ``out/contact_sheet.png``.

    Resumable like :func:`generate`. Returns the opened :class:`realgap.data.FrameSet`.
    """
    from realgap.sim.contact_sheet import contact_sheet

    fs = generate(replace(DEMO_CONFIG, out=str(out)), progress=progress)
    contact_sheet(fs, Path(out) / "contact_sheet.png")
    return fs

