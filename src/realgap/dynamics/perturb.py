"""Perturbed MuJoCo dynamics: gravity, friction, body lengths and masses, undoable exactly.

A :class:`Perturbation` is the one physics schema, :class:`realgap.sim.physics.PhysicsSetting`
(the tabletop PHYS factor speaks it too): a set of dimensionless multipliers applied to a compiled
``mujoco.MjModel`` (mbrl-latent-gap.txt, section 5: HalfCheetah with gravity 1x-2x, torso
length 1x-2x, thigh length 1x-2x; vla-domain-randomization-study.txt 3.2.4 and 0.B.3.2:
gravity and friction as the physics-fidelity factors).

How each multiplier acts (units stay SI; only magnitudes change):

- ``gravity``: ``model.opt.gravity`` (m/s^2, a 3-vector) is multiplied, direction kept.
- ``friction``: the sliding coefficient ``geom_friction[:, 0]`` of every geom (and of explicit
  contact pairs) is multiplied; torsional and rolling coefficients are left as they are.
- ``mass[body]``: ``body_mass`` (kg) and ``body_inertia`` (kg m^2) of that body are multiplied
  together (same shape, denser material), then the derived constants are recomputed with the
  camera state kept (:func:`realgap.sim.physics.refresh_mass_constants`).
- ``dampratio[body]``: contact damping ratio of the body's geoms (absolute).

Gravity, friction, masses and damping are applied by :func:`realgap.sim.physics.apply_physics`,
the implementation the tabletop factor uses; lengths are applied here.
- ``body_length[body]``: the body's geometry is rebuilt from the model *spec* and recompiled, so
  collision bounds (``geom_rbound``, ``geom_aabb``), inertias and child offsets are all
  consistent. Within the body frame: geom ``fromto`` end points, geom/site/joint positions and
  child-body offsets are multiplied by the scale; capsules and cylinders given by ``size``
  lengthen their half-length (``size[1]``), boxes and ellipsoids their longest half-size;
  radii (thickness) and spheres are unchanged. Masses follow the compiler's rules (for
  HalfCheetah ``inertiafromgeom`` with ``settotalmass=14``: a longer torso keeps the total mass
  and redistributes it).

The recompiled arrays are copied *into* the existing model (same sizes, same ids), so every
holder of the model (a Gymnasium ``MujocoEnv``, its renderer, a wrapper, realgap's tabletop
tasks) sees the change. :meth:`AppliedPerturbation.undo` copies the saved original arrays back:
the original trajectory is reproduced bit for bit.
"""

from __future__ import annotations

import copy
import difflib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import numpy as np

from realgap._optional import require
from realgap._registry import Registry
from realgap.errors import ConfigError, DataError, UnknownNameError
from realgap.sim.physics import (  # body_names: re-exported for old imports
    PhysicsSetting,
    apply_physics,
    body_id,
    body_names,  # noqa: F401
    check_positive,
)

#: Scales of the reference's HalfCheetah experiments (mbrl-latent-gap.txt, section 5).
REFERENCE_SCALES: tuple[float, ...] = (1.0, 1.05, 1.25, 1.5, 2.0)

def _check_scale(name: str, value: Any) -> float:
    return check_positive(name, value)


#: The one physics schema under its dynamics name.
Perturbation = PhysicsSetting

#: The dynamics factors: each factory maps ``(scale, body)`` to a :class:`Perturbation`
#: (``body`` is the ``BODY`` of ``length:BODY``-style names, else None). Installed packages
#: add factors through the entry-point group ``realgap.dynamics_factors``.
DYNAMICS_FACTORS: Registry[Perturbation] = Registry("dynamics factor",
                                                    entry_point_group="realgap.dynamics_factors")

#: One-parameter factors known by name (the registry's entries without ``:BODY``), in
#: the order they are registered, with what each scales.
NAMED_FACTORS: dict[str, str] = {}

_THIGHS = ("bthigh", "fthigh")


def _factor(name: str, doc: str) -> Callable[[Callable[..., Perturbation]], Callable[..., Perturbation]]:
    per_body = name.endswith(":BODY")
    if not per_body:
        NAMED_FACTORS[name] = doc
    return DYNAMICS_FACTORS.register(name, doc=doc, per_body=per_body)


@_factor("gravity", "gravity magnitude multiplier")
def _gravity(scale: float, body: str | None = None) -> Perturbation:
    return Perturbation(gravity=scale)


@_factor("friction", "sliding-friction multiplier of every geom")
def _friction(scale: float, body: str | None = None) -> Perturbation:
    return Perturbation(friction=scale)


@_factor("torso_length", "length of body 'torso' (HalfCheetah, Hopper, Walker2d, Ant)")
def _torso_length(scale: float, body: str | None = None) -> Perturbation:
    return Perturbation(body_length={"torso": scale})


@_factor("thigh_length", "length of both thighs of HalfCheetah ('bthigh', 'fthigh')")
def _thigh_length(scale: float, body: str | None = None) -> Perturbation:
    return Perturbation(body_length={b: scale for b in _THIGHS})


@_factor("length:BODY", "length of any body, by name")
def _length(scale: float, body: str | None = None) -> Perturbation:
    return Perturbation(body_length={str(body): scale})


@_factor("mass:BODY", "mass and inertia multiplier of any body, by name")
def _mass(scale: float, body: str | None = None) -> Perturbation:
    return Perturbation(mass={str(body): scale})


def factor_perturbation(factor: str, scale: float) -> Perturbation:
    """The perturbation of one dynamics factor at ``scale``.

    ``factor`` is a name of :data:`DYNAMICS_FACTORS`: one of :data:`NAMED_FACTORS`, or
    ``length:BODY`` / ``mass:BODY`` for any body.
    """
    s = _check_scale(f"scale of {factor!r}", scale)
    kind, colon, body = factor.partition(":")
    key = f"{kind}:BODY" if colon and body else factor
    if key in DYNAMICS_FACTORS:
        return DYNAMICS_FACTORS.get(key).factory(s, body or None)
    names = [n for n in DYNAMICS_FACTORS.names() if not n.endswith(":BODY")]
    close = difflib.get_close_matches(factor, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    known = [*NAMED_FACTORS, *(n for n in names if n not in NAMED_FACTORS),  # plugins last
             *(n for n in DYNAMICS_FACTORS.names() if n.endswith(":BODY"))]
    raise UnknownNameError(f"factor: unknown dynamics factor {factor!r}{hint} "
                           f"(known: {', '.join(known)})")


def halfcheetah_cases(scales: tuple[float, ...] = REFERENCE_SCALES) -> dict[str, Perturbation]:
    """The reference's HalfCheetah cases: ``{"gravity-1.5x": Perturbation(...), ...}``
    for gravity, torso length and thigh length at each scale (mbrl-latent-gap.txt, 5)."""
    return {
        f"{f}-{s:g}x": factor_perturbation(f, s)
        for f in ("gravity", "torso_length", "thigh_length")
        for s in scales
    }


# -- applying ---------------------------------------------------------------------------

def _resolve(target: Any) -> tuple[Any, Any, Any]:
    """(model, data or None, unwrapped env or None) from an env, an unwrapped env or a model."""
    mujoco = require("mujoco")
    if isinstance(target, mujoco.MjModel):
        return target, None, None
    u = getattr(target, "unwrapped", target)
    model = getattr(u, "model", None)
    if not isinstance(model, mujoco.MjModel):
        raise ConfigError(
            f"perturb: expected a MuJoCo env (with .unwrapped.model) or an MjModel, got "
            f"{type(target).__name__}; pass e.g. gymnasium.make('HalfCheetah-v5')"
        )
    return model, getattr(u, "data", None), u


def _model_spec(env: Any, spec: Any) -> Any:
    """The ``MjSpec`` the model was compiled from: given, or the env's XML."""
    mujoco = require("mujoco")
    if isinstance(spec, mujoco.MjSpec):
        return spec.copy() if hasattr(spec, "copy") else spec
    if isinstance(spec, (str, Path)):
        if str(spec).lstrip().startswith("<"):
            return mujoco.MjSpec.from_string(str(spec))
        if not Path(spec).exists():
            raise ConfigError(f"spec: no MJCF file at {spec}; pass the model's XML path")
        return mujoco.MjSpec.from_file(str(spec))
    for attr in ("mjspec", "spec_xml", "xml", "fullpath"):
        val = getattr(env, attr, None) if env is not None else None
        if val is not None and not (attr == "fullpath" and not Path(str(val)).exists()):
            return _model_spec(None, val)
    raise ConfigError(
        "body_length: changing a length needs the model's MJCF; this env exposes none "
        "(no .fullpath/.mjspec); pass spec=<xml path or MjSpec>"
    )


def _check_bodies(model: Any, arg: str, bodies: tuple[tuple[str, float], ...]) -> None:
    for body, _ in bodies:
        body_id(model, body, arg)


def _scale_body_spec(spec: Any, body: str, s: float) -> None:
    mujoco = require("mujoco")
    b = spec.body(body)
    gt = mujoco.mjtGeom
    for g in b.geoms:
        if not np.isnan(g.fromto[0]):
            g.fromto = np.asarray(g.fromto) * s
            continue
        g.pos = np.asarray(g.pos) * s
        size = np.array(g.size, dtype=float)
        if g.type in (gt.mjGEOM_CAPSULE, gt.mjGEOM_CYLINDER):
            size[1] *= s
        elif g.type in (gt.mjGEOM_BOX, gt.mjGEOM_ELLIPSOID):
            size[int(np.argmax(size[:3]))] *= s
        g.size = size
    for child in b.bodies:
        child.pos = np.asarray(child.pos) * s
    for site in b.sites:
        site.pos = np.asarray(site.pos) * s
    for joint in b.joints:
        joint.pos = np.asarray(joint.pos) * s
    if b.explicitinertial:
        b.ipos = np.asarray(b.ipos) * s


_STRUCTS = ("opt", "stat")


def _copy_model_into(dst: Any, src: Any) -> None:
    """Copy every array and option of ``src`` into ``dst`` in place (same structure required)."""
    sizes = [a for a in dir(dst) if a.startswith("n") and isinstance(getattr(dst, a), int)]
    diff = [a for a in sizes if getattr(dst, a) != getattr(src, a)]
    if diff:
        raise DataError(
            f"perturb: the recompiled model changed structure ({', '.join(diff)}); "
            "only numeric changes can be applied in place"
        )
    _copy_fields(dst, src, scalars=False)  # the model's sizes are checked equal above
    for s in _STRUCTS:
        _copy_fields(getattr(dst, s), getattr(src, s), scalars=True)


def _copy_fields(dst: Any, src: Any, *, scalars: bool) -> None:
    """Copy the public array attributes of ``src`` into ``dst`` (and int/float ones if ``scalars``)."""
    for name in dir(dst):
        if name.startswith("_"):
            continue
        v = getattr(dst, name)
        if isinstance(v, np.ndarray):
            np.copyto(v, getattr(src, name))
        elif scalars and isinstance(v, (int, float)):
            setattr(dst, name, getattr(src, name))


def _apply(model: Any, env: Any, p: Perturbation, spec: Any, data: Any = None) -> None:
    _check_bodies(model, "body_length", p.body_length)
    _check_bodies(model, "mass", p.mass)
    if any(s != 1.0 for _, s in p.body_length):
        ms = _model_spec(env, spec)
        for body, s in p.body_length:
            _scale_body_spec(ms, body, s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # HalfCheetah's deprecated settotalmass
            new = ms.compile()
        # Keep what the env adjusted after loading (e.g. offscreen buffer size).
        new.vis.global_.offwidth = model.vis.global_.offwidth
        new.vis.global_.offheight = model.vis.global_.offheight
        _copy_model_into(model, new)
    # Relative to the model as it is now (base=None), so perturbations stack.
    apply_physics(model, replace(p, body_length=()), data=data)


@dataclass
class AppliedPerturbation:
    """A perturbation in force on a model; :meth:`undo` (or leaving the ``with``) restores it.

    Attributes:
        perturbation: what was applied.
        model: the (now perturbed) ``MjModel``.
    """

    perturbation: Perturbation
    model: Any
    _data: Any = field(repr=False, default=None)
    _env: Any = field(repr=False, default=None)
    _saved: Any = field(repr=False, default=None)
    active: bool = True

    def undo(self) -> None:
        """Copy the original model arrays back (exact), refresh ``data``; idempotent."""
        if not self.active:
            return
        mujoco = require("mujoco")
        _copy_model_into(self.model, self._saved)
        if self._data is not None:
            mujoco.mj_forward(self.model, self._data)
        if self._env is not None:
            stack = getattr(self._env, "_realgap_perturbations", [])
            if self in stack:
                stack.remove(self)
        self.active = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()


def perturb(
    target: Any,
    perturbation: Perturbation | None = None,
    *,
    gravity: float | None = None,
    friction: float | None = None,
    body_length: Mapping[str, float] | None = None,
    mass: Mapping[str, float] | None = None,
    dampratio: Mapping[str, float] | None = None,
    spec: Any = None,
) -> AppliedPerturbation:
    """Apply a :class:`Perturbation` in place to an env's (or a bare) ``MjModel``.

    Args:
        target: a Gymnasium MuJoCo env (wrapped or not), any object whose ``.unwrapped``
            has ``.model`` (and ``.data``) such as ``realgap.sim.make(...)``, or an ``MjModel``.
        perturbation: the multipliers; or give them as keywords (``gravity=2.0,
            body_length={"torso": 1.5}``), which override its fields.
        spec: the MJCF (path, XML string or ``MjSpec``) for length changes when the env does
            not expose one (Gymnasium envs expose ``.fullpath``).

    Returns:
        An :class:`AppliedPerturbation`; call ``.undo()`` or use it as a context manager.
        Its ``perturbation.factors()`` is the provenance record. Stacked perturbations must
        be undone last-in, first-out (each restores the model as it found it).

    Raises:
        ConfigError: a non-positive or non-finite scale, no MJCF for a length change.
        UnknownNameError: a body name the model does not have (close matches listed).
    """
    p = perturbation or Perturbation()
    given = {"gravity": gravity, "friction": friction, "body_length": body_length, "mass": mass,
             "dampratio": dampratio}
    kw = {k: v for k, v in given.items() if v is not None}
    if kw:
        p = Perturbation(**{**p.__dict__, **kw})
    model, data, env = _resolve(target)
    if env is not None and getattr(env, "_realgap_perturbations", None) and p.body_length:
        raise ConfigError(
            "perturb: a length change must be applied to an unperturbed model (the MJCF does "
            "not carry earlier perturbations); undo the active one first or combine them"
        )
    saved = copy.copy(model)
    try:
        _apply(model, env, p, spec, data)
    except Exception:
        _copy_model_into(model, saved)
        raise
    mujoco = require("mujoco")
    if data is not None:
        mujoco.mj_forward(model, data)
    applied = AppliedPerturbation(p, model, data, env, saved)
    if env is not None:
        try:
            env.__dict__.setdefault("_realgap_perturbations", []).append(applied)
        except AttributeError:  # objects with __slots__: no stacking bookkeeping
            pass
    return applied


def make_env(env_id: str, perturbation: Perturbation | None = None, **kwargs: Any) -> Any:
    """``gymnasium.make(env_id, **kwargs)`` with ``perturbation`` applied.

    The returned env reports the perturbation in ``info["factors"]`` (``{"PHYS": {...}}``) on
    every ``reset`` and ``step``, like the visual factors of realgap's tabletop tasks.
    """
    gym = require("gymnasium")
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise UnknownNameError(
            f"env: Gymnasium cannot make {env_id!r} ({exc}); use a registered id such as "
            "HalfCheetah-v5, Hopper-v5 or InvertedPendulum-v5"
        ) from None
    p = perturbation or Perturbation()
    applied = perturb(env, p) if not p.is_identity else None
    from realgap.dynamics.wrappers import PerturbedEnv

    return PerturbedEnv(env, p, applied)
