"""Load a stable-baselines3 ``.zip`` policy without unpickling anything from it.

SB3's own ``ALGO.load()`` runs ``cloudpickle.loads`` on every non-JSON value of the zip's
``data`` entry (``policy_class``, the spaces, schedules, ``policy_kwargs`` holding a
class), so a crafted zip executes any code on load (docs/security.md). realgap instead reads the
zip as data (``stable_baselines3/common/save_util.py`` writes it):

- ``data``: JSON, parsed with :func:`json.loads` only. Cloudpickled values keep their
  ``":serialized:"`` base64 text unread; only the plain-text fields SB3 writes beside it
  (``policy_class.__module__``, ``observation_space._shape``, ``str()`` of a class in
  ``policy_kwargs``) are looked at, as strings.
- ``policy.pth``: the policy's state dict, read with ``torch.load(weights_only=True)``
  (tensors and plain containers only).

The policy network is rebuilt from the *environment's* spaces with SB3's own policy
class for the algorithm (``SACPolicy``, ``TD3Policy`` for TD3/DDPG, ``ActorCriticPolicy``
for PPO/A2C): layer widths are read from the state dict's tensor shapes, the activation
and the few architecture switches (``use_sde``, ``n_critics``, ...) from the JSON
``policy_kwargs`` when they are plain values or a known ``torch.nn`` activation class
name, else SB3's defaults. The weights are then loaded strictly, so anything that does
not fit is an error, not a silently different network. Deterministic actions equal those
of ``ALGO.load(...).predict(obs, deterministic=True)`` exactly (tested).

What cannot be rebuilt this way (image or dict observations, a custom features
extractor, unknown ``policy_kwargs``) is refused with a one-line error that names
``--trust-pickle`` (``trust_pickle=True``): then SB3's ``load()`` is used, which the
user has explicitly accepted may run code from the file.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError, DataError

TRUST_FLAG = "--trust-pickle"
ALGORITHMS = ("SAC", "TD3", "DDPG", "PPO", "A2C")

#: Largest ``data`` / ``policy.pth`` entry read (bytes): a zip bomb fails fast.
MAX_DATA_BYTES = 64 << 20
MAX_POLICY_BYTES = 4 << 30

#: ``torch.nn`` activations a ``policy_kwargs.activation_fn`` may name (by ``str(cls)``).
_ACTIVATIONS = ("ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Softplus",
                "Mish", "Hardtanh", "SELU", "CELU", "ReLU6", "Hardswish", "Tanhshrink")
_ACT_RE = re.compile(r"^<class 'torch\.nn\.modules\.activation\.(\w+)'>$")
#: ``policy_kwargs`` keys with plain JSON values passed through to the policy class.
_PLAIN_KWARGS = {
    "SAC": ("use_sde", "log_std_init", "use_expln", "clip_mean", "n_critics",
            "share_features_extractor", "normalize_images"),
    "TD3": ("n_critics", "share_features_extractor", "normalize_images"),
    "AC": ("use_sde", "log_std_init", "full_std", "use_expln", "squash_output", "ortho_init",
           "share_features_extractor", "normalize_images"),
}
#: Keys that only concern training (optimizer) and are ignored for evaluation.
_TRAINING_ONLY = ("optimizer_class", "optimizer_kwargs")
_FLATTEN = "<class 'stable_baselines3.common.torch_layers.FlattenExtractor'>"
#: ``policy_kwargs`` keys accepted only with these (default) values.
_DEFAULT_ONLY: dict[str, tuple[Any, ...]] = {"features_extractor_class": (_FLATTEN,),
                                             "features_extractor_kwargs": ({}, None)}


@dataclass
class SB3Zip:
    """What realgap read from an SB3 zip: never an object built by unpickling."""

    path: Path
    algo: str
    #: The ``data`` entry as parsed JSON (cloudpickled values are unread base64 text).
    data: dict[str, Any]
    state_dict: dict[str, Any]
    sb3_version: str = "?"


@dataclass
class SafeSB3Policy:
    """An SB3 policy network rebuilt from the environment and loaded from ``policy.pth``.

    Quacks like an SB3 model for evaluation: ``predict(obs, deterministic=True)``
    returns ``(action, None)``; ``observation_space`` is the rebuilt one.
    """

    algo: str
    policy: Any
    path: Path
    sb3_version: str = "?"
    loader: str = "safe: policy.pth via torch.load(weights_only=True), data as JSON"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def observation_space(self) -> Any:
        return self.policy.observation_space

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        action, _ = self.policy.predict(obs, deterministic=deterministic)
        return action, None


def _untrusted(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"policy: {path}: {why}, so realgap cannot rebuild it without unpickling code from "
        f"the file; if you trust the file, pass {TRUST_FLAG} to load it with "
        "stable-baselines3's own load(), which can run code stored in it"
    )


def read_sb3_zip(path: str | Path) -> SB3Zip:
    """Read an SB3 zip's ``data`` (as JSON) and ``policy.pth`` (weights only).

    Raises:
        DataError: not a zip, no ``data``/``policy.pth``, bad JSON, or a ``policy.pth``
            holding anything but tensors.
        ConfigError: an algorithm realgap cannot identify (names :data:`TRUST_FLAG`).
    """
    torch = require("torch")
    p = Path(path)
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"policy: {p} is not a stable-baselines3 .zip ({exc}); pass a file "
                        "written by model.save()") from None
    with zf:
        members = {i.filename: i for i in zf.infolist()}
        for need, limit in (("data", MAX_DATA_BYTES), ("policy.pth", MAX_POLICY_BYTES)):
            if need not in members:
                raise DataError(f"policy: {p} has no {need!r} entry; not a stable-baselines3 "
                                "model zip (written by model.save())")
            if members[need].file_size > limit:
                raise DataError(f"policy: {p}: entry {need!r} is {members[need].file_size} "
                                f"bytes, more than the {limit} realgap reads")
        try:
            data = json.loads(zf.read("data").decode("utf-8"))
            raw = zf.read("policy.pth")
            version = (zf.read("_stable_baselines3_version").decode("utf-8", "replace").strip()
                       if "_stable_baselines3_version" in members else "?")
        except (UnicodeDecodeError, json.JSONDecodeError, zipfile.BadZipFile, OSError,
                RuntimeError, ValueError) as exc:
            raise DataError(f"policy: {p}: unreadable 'data' entry ({exc}); the zip is "
                            "corrupt") from None
    if not isinstance(data, dict):
        raise DataError(f"policy: {p}: 'data' holds {type(data).__name__}, not a JSON object")
    try:
        sd = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types on corrupt/unsafe pickles
        from realgap.encoders.weights import _first_line

        raise DataError(f"policy: {p}: policy.pth is not a plain state dict of tensors "
                        f"({_first_line(exc)}); realgap loads weights only") from None
    if not isinstance(sd, dict) or not all(hasattr(v, "shape") for v in sd.values()):
        raise DataError(f"policy: {p}: policy.pth does not hold a state dict of tensors")
    return SB3Zip(p, _algorithm(p, data, sd), data, sd, version)


def _algorithm(path: Path, data: dict[str, Any], sd: dict[str, Any]) -> str:
    """SAC / TD3 / DDPG / PPO / A2C from the state-dict layout, checked against the JSON's
    ``policy_class.__module__`` text when present."""
    keys = set(sd)
    if any(k.startswith("actor.latent_pi.") for k in keys):
        algo, module = "SAC", "stable_baselines3.sac.policies"
    elif any(k.startswith("actor.mu.") for k in keys) and any(k.startswith("critic.qf0.") for k in keys):
        algo = "TD3" if any(k.startswith("critic.qf1.") for k in keys) else "DDPG"
        module = "stable_baselines3.td3.policies"
    elif any(k.startswith("mlp_extractor.policy_net.") for k in keys) and "action_net.weight" in keys:
        algo = "PPO" if "n_epochs" in data else "A2C"
        module = "stable_baselines3.common.policies"
    else:
        raise _untrusted(path, "its policy.pth is not an SB3 SAC, TD3, DDPG, PPO or A2C MLP policy")
    pc = data.get("policy_class")
    declared = pc.get("__module__") if isinstance(pc, dict) else None
    if declared is not None and declared != module:
        raise _untrusted(path, f"its policy class comes from {declared!r}, not SB3's {module!r}")
    return algo


def _linear_widths(sd: dict[str, Any], prefix: str) -> list[int]:
    """Output widths of the ``prefix{i}.weight`` linear layers, in index order."""
    found = []
    for k, v in sd.items():
        if k.startswith(prefix) and k.endswith(".weight"):
            idx = k[len(prefix):-len(".weight")]
            if idx.isdigit() and len(v.shape) == 2:
                found.append((int(idx), int(v.shape[0])))
    return [w for _, w in sorted(found)]


def _policy_kwargs(z: SB3Zip, family: str) -> dict[str, Any]:
    """The JSON ``policy_kwargs`` as constructor arguments, or a refusal naming the flag."""
    nn = require("torch").nn
    raw = z.data.get("policy_kwargs") or {}
    if not isinstance(raw, dict):
        raise _untrusted(z.path, "its policy_kwargs are not a JSON object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in (":type:", ":serialized:") or key in _TRAINING_ONLY or key == "net_arch":
            continue  # net_arch is read from the tensor shapes; the optimizer is not used
        if key in _PLAIN_KWARGS[family] and isinstance(value, (bool, int, float)):
            out[key] = value
        elif key == "activation_fn" and isinstance(value, str) and (m := _ACT_RE.match(value)) \
                and m.group(1) in _ACTIVATIONS:
            out[key] = getattr(nn, m.group(1))
        elif value in _DEFAULT_ONLY.get(key, ()):
            continue  # SB3's default extractor for Box observations: nothing to rebuild
        else:
            raise _untrusted(z.path, f"its policy_kwargs[{key!r}] = {str(value)[:60]!r} is not "
                                     "a setting realgap knows")
    return out


def _check_space(z: SB3Zip, key: str, space: Any) -> None:
    """The zip's recorded space (plain-text fields) must match the environment's."""
    rec = z.data.get(key)
    if not isinstance(rec, dict):
        return
    kind = str(rec.get(":type:", ""))
    if kind and not kind.endswith(".Box'>"):
        raise _untrusted(z.path, f"its {key} is {kind}, realgap rebuilds Box spaces only")
    shape = rec.get("_shape")
    if isinstance(shape, list) and tuple(shape) != tuple(space.shape):
        raise DataError(f"policy: {z.path}: {key} shape {tuple(shape)} does not match the env's "
                        f"{tuple(space.shape)}; the policy was trained on another env")


def build_policy(z: SB3Zip, observation_space: Any, action_space: Any) -> SafeSB3Policy:
    """Rebuild the SB3 policy network for ``z`` on the given spaces and load its weights.

    Raises:
        DataError: the spaces or the weights do not fit.
        ConfigError: settings realgap cannot rebuild without unpickling (names the flag).
    """
    require("stable_baselines3")
    torch = require("torch")
    gym_spaces = require("gymnasium").spaces
    if not isinstance(observation_space, gym_spaces.Box) or not isinstance(action_space, gym_spaces.Box):
        raise _untrusted(z.path, "the env's spaces are not Box spaces")
    _check_space(z, "observation_space", observation_space)
    _check_space(z, "action_space", action_space)
    sd = z.state_dict

    def lr(_progress: float) -> float:  # the optimizer SB3 builds is never stepped
        return 0.0

    if z.algo == "SAC":
        from stable_baselines3.sac.policies import SACPolicy

        kw = _policy_kwargs(z, "SAC")
        kw["net_arch"] = {"pi": _linear_widths(sd, "actor.latent_pi."),
                          "qf": _linear_widths(sd, "critic.qf0.")[:-1]}
        kw.setdefault("n_critics", len({k.split(".")[1] for k in sd if k.startswith("critic.qf")}))
        cls: Any = SACPolicy
    elif z.algo in ("TD3", "DDPG"):
        from stable_baselines3.td3.policies import TD3Policy

        kw = _policy_kwargs(z, "TD3")
        kw["net_arch"] = {"pi": _linear_widths(sd, "actor.mu.")[:-1],
                          "qf": _linear_widths(sd, "critic.qf0.")[:-1]}
        kw.setdefault("n_critics", len({k.split(".")[1] for k in sd if k.startswith("critic.qf")}))
        cls = TD3Policy
    else:
        from stable_baselines3.common.policies import ActorCriticPolicy

        kw = _policy_kwargs(z, "AC")
        kw["net_arch"] = {"pi": _linear_widths(sd, "mlp_extractor.policy_net."),
                          "vf": _linear_widths(sd, "mlp_extractor.value_net.")}
        cls = ActorCriticPolicy
    try:
        policy = cls(observation_space, action_space, lr, **kw)
    except (TypeError, ValueError, AssertionError) as exc:
        raise _untrusted(z.path, f"its settings do not build an SB3 {z.algo} policy ({exc})") from None
    try:
        policy.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise DataError(f"policy: {z.path}: weights do not fit the {z.algo} policy rebuilt for "
                        f"this env ({lines[1] if len(lines) > 1 else lines[0]}); check --env, "
                        f"or pass {TRUST_FLAG} for a custom architecture") from None
    policy.set_training_mode(False)
    policy.to(torch.device("cpu"))
    return SafeSB3Policy(z.algo, policy, z.path, z.sb3_version)


def load_sb3_policy(path: str | Path, observation_space: Any, action_space: Any,
                    trust_pickle: bool = False) -> Any:
    """The policy in an SB3 zip, for ``predict(obs, deterministic=True)``.

    Without ``trust_pickle`` nothing in the file is unpickled (:func:`read_sb3_zip`,
    :func:`build_policy`). With it, SB3's ``ALGO.load`` is used as-is.
    """
    if not trust_pickle:
        return build_policy(read_sb3_zip(path), observation_space, action_space)
    sb3 = require("stable_baselines3")
    errors = []
    for algo in ALGORITHMS:
        try:
            return getattr(sb3, algo).load(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - SB3 raises many kinds on a mismatched zip
            errors.append(f"{algo}: {type(exc).__name__}")
    raise DataError(f"policy: {path} is not a loadable stable-baselines3 model ({'; '.join(errors)})")
