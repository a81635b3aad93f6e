"""The one physics schema and its one implementation, used by ``sim`` and ``dynamics``.

A :class:`PhysicsSetting` is a set of dimensionless multipliers (1.0 = unchanged) plus
per-body contact damping ratios, applied to a compiled ``mujoco.MjModel`` relative to a
*base* (the model's defaults). The tabletop PHYS factor
(:class:`realgap.sim.factors.Physics`, vla-domain-randomization-study.txt 3.2.4 and
0.B.3.2: gravity, friction, restitution, masses) and the dynamics perturbations
(:func:`realgap.dynamics.perturb`, mbrl-latent-gap.txt section 5: gravity, body
lengths) both speak it and both apply it through :func:`apply_physics`, so the same
setting gives the same model parameters whichever way it comes in.

How each field acts (units stay SI; only magnitudes change):

- ``gravity``: ``model.opt.gravity`` (m/s^2, a 3-vector) = base x multiplier, direction kept.
- ``friction``: the sliding coefficient ``geom_friction[:, 0]`` of every geom, and the two
  sliding coefficients of explicit contact pairs, = base x multiplier; torsional and
  rolling coefficients are left as they are.
- ``mass[body]``: ``body_mass`` (kg) and ``body_inertia`` (kg m^2) of that body = base x
  scale (same shape, denser material); the constants MuJoCo derives from masses are then
  recomputed by :func:`refresh_mass_constants`, which keeps the camera and light reference
  poses and the simulation state as they were.
- ``dampratio[body]``: the contact damping ratio ``geom_solref[:, 1]`` of the body's geoms
  (an absolute value, not a multiplier; below 1 contacts bounce: MuJoCo's soft-contact
  restitution).
- ``body_length[body]``: the body's geometry scaled along its links; this needs the model's
  MJCF and a recompile, so only :func:`realgap.dynamics.perturb` applies it (the tabletop
  factor refuses it).

As JSON (the ``factors["PHYS"]`` record of a frame or a transition)::

    {"gravity": 1.0, "friction": 1.0, "body_length": {}, "mass": {"box": 1.3},
     "dampratio": {"mug": 0.5}}

The tabletop factor's earlier records (``{"gravity": [gx, gy, gz], "friction_scale": f,
"dampratio": d, "mass_scale": {...}}``) are still read by :meth:`PhysicsSetting.from_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError, UnknownNameError

__all__ = ["BASE_ARRAYS", "DERIVED", "KEEP", "PhysicsSetting", "apply_physics", "body_id",
           "body_names", "check_positive", "physics_base", "refresh_mass_constants"]

#: Model arrays a setting is applied relative to (``"gravity"`` is ``model.opt.gravity``).
BASE_ARRAYS: tuple[str, ...] = ("gravity", "geom_friction", "pair_friction", "geom_solref",
                                "body_mass", "body_inertia")
#: Constants derived from masses by ``mj_setConst``.
DERIVED: tuple[str, ...] = ("body_subtreemass", "body_invweight0", "dof_M0", "dof_invweight0")
#: Reference poses ``mj_setConst`` also rewrites; kept as they were, so a heavier object
#: never moves a camera or a light.
KEEP: tuple[str, ...] = ("cam_pos0", "cam_mat0", "cam_poscom0", "light_pos0", "light_poscom0",
                         "light_dir0")

_KEYS = ("gravity", "friction", "body_length", "mass", "dampratio")


def check_positive(name: str, value: Any, what: str = "a multiplier such as 1.5") -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a positive number ({what}), got {value!r}") from None
    if not math.isfinite(x) or x <= 0.0:
        raise ConfigError(f"{name}: must be a positive finite number ({what}), got {value!r}; "
                          "use e.g. 1.5 for 1.5x or 0.5 for half")
    return x


def _per_body(name: str, value: Any, what: str = "a multiplier such as 1.5"
              ) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    out: dict[str, float] = {}
    for item in items:
        try:
            body, x = item
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a mapping body -> value such as "
                              f"{{'torso': 1.5}}, got {value!r}") from None
        out[str(body)] = check_positive(f"{name}[{body!r}]", x, what)
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class PhysicsSetting:
    """Physics of a MuJoCo model relative to its defaults (1.0 = unchanged).

    Per-body fields accept a mapping ``{body_name: value}`` and are stored as sorted
    tuples, so the dataclass stays hashable and its JSON stable.
    """

    gravity: float = 1.0
    """Multiplier of the gravity vector's magnitude."""
    friction: float = 1.0
    """Multiplier of every geom's (and contact pair's) sliding friction coefficient."""
    body_length: Any = ()
    """``{body: scale}``: lengthen (``> 1``) or shorten a body's geometry along its links."""
    mass: Any = ()
    """``{body: scale}``: multiply a body's mass and rotational inertia."""
    dampratio: Any = ()
    """``{body: ratio}``: contact damping ratio of the body's geoms (absolute, > 0)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "gravity", check_positive("gravity", self.gravity))
        object.__setattr__(self, "friction", check_positive("friction", self.friction))
        object.__setattr__(self, "body_length", _per_body("body_length", self.body_length))
        object.__setattr__(self, "mass", _per_body("mass", self.mass))
        object.__setattr__(self, "dampratio", _per_body(
            "dampratio", self.dampratio, "a contact damping ratio such as 0.5"))

    @property
    def is_identity(self) -> bool:
        """True when applying it to its base changes nothing."""
        return (self.gravity == 1.0 and self.friction == 1.0 and not self.dampratio
                and all(s == 1.0 for _, s in self.body_length)
                and all(s == 1.0 for _, s in self.mass))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (see the module docstring)."""
        return {"gravity": self.gravity, "friction": self.friction,
                "body_length": dict(self.body_length), "mass": dict(self.mass),
                "dampratio": dict(self.dampratio)}

    def factors(self) -> dict[str, Any]:
        """Provenance in the shape of the visual factors: ``{"PHYS": self.as_dict()}``."""
        return {"PHYS": self.as_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], gravity_base: float = 9.81) -> PhysicsSetting:
        """Inverse of :meth:`as_dict`; also reads the ``{"PHYS": {...}}`` form and the
        tabletop factor's earlier record (absolute gravity vector, whose magnitude is
        divided by ``gravity_base`` (m/s^2); ``friction_scale``; ``mass_scale``; one
        ``dampratio`` for the bodies of ``mass_scale``)."""
        if "PHYS" in d and isinstance(d["PHYS"], Mapping):
            d = d["PHYS"]
        d = dict(d)
        if "friction_scale" in d or "mass_scale" in d or isinstance(d.get("gravity"), (list, tuple)):
            d = _from_old_record(d, gravity_base)
        unknown = set(d) - set(_KEYS)
        if unknown:
            raise ConfigError(f"physics: unknown keys {sorted(unknown)}; expected "
                              f"{', '.join(_KEYS)}")
        return cls(gravity=d.get("gravity", 1.0), friction=d.get("friction", 1.0),
                   body_length=d.get("body_length") or (), mass=d.get("mass") or (),
                   dampratio=d.get("dampratio") or ())

    def label(self) -> str:
        """Short human label, e.g. ``gravity=2 length:torso=1.5`` (``nominal`` for identity)."""
        parts = []
        if self.gravity != 1.0:
            parts.append(f"gravity={self.gravity:g}")
        if self.friction != 1.0:
            parts.append(f"friction={self.friction:g}")
        parts += [f"length:{b}={s:g}" for b, s in self.body_length if s != 1.0]
        parts += [f"mass:{b}={s:g}" for b, s in self.mass if s != 1.0]
        parts += [f"dampratio:{b}={s:g}" for b, s in self.dampratio]
        return " ".join(parts) or "nominal"


def _from_old_record(d: Mapping[str, Any], gravity_base: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    g = d.get("gravity", 1.0)
    out["gravity"] = (float(np.linalg.norm(np.asarray(g, float))) / gravity_base
                      if isinstance(g, (list, tuple)) else g)
    out["friction"] = d.get("friction_scale", d.get("friction", 1.0))
    out["mass"] = d.get("mass_scale", d.get("mass")) or {}
    dr = d.get("dampratio")
    out["dampratio"] = ({b: dr for b in out["mass"]} if isinstance(dr, (int, float))
                        else dr or {})
    return out


# -- applying ----------------------------------------------------------------------------
def body_names(model: Any) -> list[str]:
    """Names of the model's bodies, in id order (the world body included)."""
    mujoco = require("mujoco")
    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, i) or "" for i in range(model.nbody)]


def body_id(model: Any, body: str, arg: str) -> int:
    """The id of body ``body``; an unknown name is an UnknownNameError naming ``arg``."""
    names = body_names(model)
    if body in names and body:
        return names.index(body)
    import difflib

    known = [n for n in names if n]
    close = difflib.get_close_matches(body, known, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownNameError(f"{arg}: unknown body {body!r}{hint} (bodies in this model: "
                           f"{', '.join(known)})")


def physics_base(model: Any) -> dict[str, np.ndarray]:
    """Copies of the arrays a setting is applied relative to (:data:`BASE_ARRAYS`)."""
    return {k: np.array(model.opt.gravity if k == "gravity" else getattr(model, k), copy=True)
            for k in BASE_ARRAYS}


def refresh_mass_constants(model: Any, data: Any = None) -> None:
    """Recompute what MuJoCo derives from masses (:data:`DERIVED`) after masses changed.

    Left stale, ``dof_invweight0`` keeps contacts as soft as for the old masses (a heavier
    box blew up when squeezed by the fingers). ``mj_setConst`` also rewrites the camera and
    light reference poses (:data:`KEEP`): they are put back, so the camera does not move.
    It works at ``qpos0`` and leaves ``data`` there: the full integration state of ``data``
    is saved and restored around it (a fresh ``MjData`` is used when ``data`` is None).
    """
    mj = require("mujoco")
    keep = {k: np.array(getattr(model, k), copy=True) for k in KEEP}
    if data is None:
        mj.mj_setConst(model, mj.MjData(model))
    else:
        spec = mj.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mj.mj_stateSize(model, spec))
        mj.mj_getState(model, data, state, spec)
        mj.mj_setConst(model, data)
        mj.mj_setState(model, data, state, spec)
    for k, v in keep.items():
        getattr(model, k)[...] = v
    if data is not None:
        mj.mj_forward(model, data)


def apply_physics(model: Any, setting: PhysicsSetting, base: Mapping[str, np.ndarray] | None = None,
                  data: Any = None) -> None:
    """Give ``model`` the physics ``setting`` relative to ``base`` (:func:`physics_base`
    of the defaults; None: the model as it is now, so settings stack).

    Writes gravity, friction, the masses and inertias of the named bodies and the damping
    ratios of their geoms; recomputes the mass-derived constants when a mass changed
    (:func:`refresh_mass_constants`, with ``data``'s state kept). ``body_length`` is not
    applied here (it needs the MJCF; see :func:`realgap.dynamics.perturb`).

    Raises:
        UnknownNameError: a body the model does not have (close matches listed).
    """
    b = physics_base(model) if base is None else base
    mass_ids = [(body_id(model, n, "mass"), s) for n, s in setting.mass]
    damp_ids = [(body_id(model, n, "dampratio"), r) for n, r in setting.dampratio]
    model.opt.gravity[:] = b["gravity"] * setting.gravity
    model.geom_friction[:, 0] = b["geom_friction"][:, 0] * setting.friction
    if model.npair:
        model.pair_friction[:, :2] = b["pair_friction"][:, :2] * setting.friction
    # Bodies the setting does not name get their base values: a setting is the whole
    # physics relative to the base, not a change on top of the previous setting.
    model.geom_solref[:, 1] = b["geom_solref"][:, 1]
    for i, r in damp_ids:
        start, num = int(model.body_geomadr[i]), int(model.body_geomnum[i])
        if start >= 0:
            model.geom_solref[start:start + num, 1] = r
    old_mass = np.array(model.body_mass, copy=True)
    old_inertia = np.array(model.body_inertia, copy=True)
    model.body_mass[:] = b["body_mass"]
    model.body_inertia[:] = b["body_inertia"]
    for i, s in mass_ids:
        model.body_mass[i] = b["body_mass"][i] * s
        model.body_inertia[i] = b["body_inertia"][i] * s
    if not (np.array_equal(old_mass, model.body_mass)
            and np.array_equal(old_inertia, model.body_inertia)):
        refresh_mass_constants(model, data)
