"""The encoder registry, ``create_encoder``, and the encoders that need no download.

Names (``realgap encoders list`` prints them all):

* the 23 rows of Table I (:mod:`realgap.encoders.zoo`), e.g. ``clip-b16``, ``r3m-resnet50``;
  each needs its published checkpoint (``weights=PATH`` or a standard cache);
* ``<zoo name>.random``: the same network with seeded random weights and the zoo's
  preprocessing, labelled ``random-init`` in every result (``random_init=True`` gives the
  same). Variants are tags after a dot, as in timm (``resnet18.a1_in1k``);
* ``pixels``: the frame area-averaged to 16 x 16 RGB in [0, 1], flattened in
  ``(y, x, channel)`` order (768 values) -- the "no encoder" baseline;
* ``resnet18.random_native``: torchvision ResNet18, seeded random init, run at the frame's
  native resolution with ImageNet normalization (a random network has no training
  resolution to honour, and native size keeps the demo fast);
* ``bc-sim`` / ``bc-sim-nominal``: end-to-end behaviour-cloning encoders that realgap
  trains on the ``sim`` (randomized) / ``sim-nominal`` (unrandomized) frames of a
  FrameSet (:func:`realgap.encoders.bc.train_bc_encoder`); pass ``frameset=``;
* ``small-e2e`` / ``resnet18-e2e``: the end-to-end encoder of a trained realgap policy
  checkpoint, given as ``weights=CKPT`` (:func:`realgap.encoders.e2e.policy_encoder`;
  the gap job's ``--weights small-e2e=CKPT``), so the encoder a policy learned with its
  head can be scored offline;
* ``package.module:factory``: a plugin factory returning an :class:`Encoder` or a
  ``torch.nn.Module`` (wrapped with ImageNet preprocessing at 224 x 224). Importing a
  module runs its code, so this needs explicit permission that no file can give:
  ``allow_plugins=True``, ``with plugins_allowed():``, or ``--allow-plugin`` on the
  command line. Even then the callable must declare itself an encoder factory
  (:func:`encoder_factory`, or a return annotation of :class:`Encoder` or a
  ``torch.nn.Module`` subclass, or be an ``nn.Module`` class), so ``os:system`` or
  ``code:interact`` is refused before it is called;
* plugins from the entry-point group ``realgap.encoders`` (installed packages, trusted
  like any installed dependency).

Old names stay as aliases (:data:`ENCODER_ALIASES`): ``<zoo name>-random`` is
``<zoo name>.random``, except ``resnet18-random``, which was the native-resolution
baseline and stays it (``resnet18.random_native``; the 224 px variant was called
``resnet18-random-224px``). The dash suffix collided with that registered name; the dot
cannot collide with a zoo name, none of which has a dot. An encoder built under an old name
keeps that name in results, so earlier runs and caches stay comparable.

Names read from files (a policy checkpoint's ``policy_config.encoder``) go through the
same :func:`create_encoder`: they resolve against the registry unless the user allowed
plugins for this run on the command line (``docs/security.md``). A policy whose frozen
encoder a name cannot rebuild (``bc-*``) stores that encoder's weights as plain tensors
(:func:`encoder_state`); ``create_encoder(name, state=..., stored_in=PATH)`` rebuilds it
and checks the weights' hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from realgap._optional import require
from realgap._registry import Registry
from realgap.encoders.base import Encoder, EncoderInfo, Preprocess
from realgap.encoders.weights import find_weights, random_state_hash
from realgap.encoders.zoo import ZOO, ZooSpec, build_encoder, seeded_torch
from realgap.errors import ConfigError, DataError, UnknownNameError

#: Every named encoder. Factories take keyword arguments ``weights``, ``random_init``,
#: ``device``, ``seed`` (and, for trained encoders, ``frameset``, ``camera``, ...).
ENCODERS: Registry[Encoder] = Registry("encoder", entry_point_group="realgap.encoders")

#: Tag of the seeded random-weight variant of a zoo encoder (``resnet18.random``).
RANDOM_TAG = ".random"
#: The old dash suffix of random variants, kept as an alias (:data:`ENCODER_ALIASES`).
RANDOM_SUFFIX = "-random"

#: The command-line flag that allows ``module:factory`` plugins (named in every refusal).
PLUGIN_FLAG = "--allow-plugin"

#: Whether ``module:factory`` names may be imported in the current context. Set only by
#: code acting for the user (the CLI's ``--allow-plugin``), never from a file's contents.
_ALLOW_PLUGINS: ContextVar[bool] = ContextVar("realgap_allow_plugins", default=False)

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def plugins_allowed(allow: bool = True) -> Iterator[None]:
    """Allow (or forbid) ``module:factory`` encoder plugins inside the block."""
    token = _ALLOW_PLUGINS.set(bool(allow))
    try:
        yield
    finally:
        _ALLOW_PLUGINS.reset(token)


#: CLI commands that build encoders or load policy checkpoints (which name encoders).
PLUGIN_COMMANDS = ("gap", "train", "rollout", "evaluate", "protocol", "vat", "encoders")


def add_plugin_flag(subparsers: Any, commands: tuple[str, ...] = PLUGIN_COMMANDS) -> None:
    """Add :data:`PLUGIN_FLAG` to every (sub)command parser under ``commands``.

    ``subparsers`` is the top-level ``add_subparsers()`` action; the flag stores
    ``args.allow_plugin``, which the CLI turns into :func:`plugins_allowed` for the run.
    """
    import argparse

    def walk(parser: argparse.ArgumentParser) -> None:
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not nested:
            parser.add_argument(
                PLUGIN_FLAG, dest="allow_plugin", action="store_true",
                help="allow module:factory encoder plugins (imports and runs that Python code; "
                     "names inside checkpoints and other files never enable this)")
        for action in nested:
            for child in {id(c): c for c in action.choices.values()}.values():
                walk(child)

    for name in commands:
        if name in subparsers.choices:
            walk(subparsers.choices[name])


def encoder_factory(fn: F) -> F:
    """Mark ``fn`` as an encoder factory that ``create_encoder("pkg.mod:fn")`` may call."""
    fn.realgap_encoder_factory = True  # type: ignore[attr-defined]
    return fn


def _zoo_factory(spec: ZooSpec, random_tag: bool = False) -> Callable[..., Encoder]:
    def factory(*, weights: Any = None, random_init: bool = False, device: str = "cpu",
                seed: int = 0, **_: Any) -> Encoder:
        random_init = random_init or random_tag
        name = f"{spec.name}{RANDOM_TAG}" if random_init else spec.name
        return build_encoder(spec, weights=weights, random_init=random_init, device=device,
                             seed=seed, name=name)

    factory.__name__ = (spec.name + ("_random" if random_tag else "")).replace("-", "_")
    return factory


for _spec in ZOO.values():
    ENCODERS.add(_spec.name, _zoo_factory(_spec), info=_spec.info, source="zoo")
    ENCODERS.add_variant(_spec.name, RANDOM_TAG[1:], _zoo_factory(_spec, random_tag=True),
                         info=_spec.info, source="random")


PIXELS_INFO = EncoderInfo(family="raw", embed_dim=768, params_m=0.0, training="None",
                          pretrain_data="None", library="realgap", arch="area-average 16x16x3",
                          notes="frame area-averaged to 16x16 RGB in [0,1], flattened (y, x, c)")


@ENCODERS.register("pixels", info=PIXELS_INFO, source="offline")
def pixels(*, device: str = "cpu", size: int = 16, **_: Any) -> Encoder:
    """Downsampled raw pixels: ``(N, size*size*3)`` in [0, 1], ``(y, x, c)`` order."""
    from realgap.encoders._nets import Pixels

    info = PIXELS_INFO if size == 16 else EncoderInfo(
        **{**PIXELS_INFO.as_dict(), "embed_dim": 3 * size * size,
           "arch": f"area-average {size}x{size}x3", "checkpoints": (), "extra_paths": ()})
    pre = Preprocess(input_size=None, resize=None, mean=None, std=None)
    return Encoder("pixels" if size == 16 else f"pixels{size}", info, pre, Pixels(size),
                   weights_origin="none", weights_hash=f"none:pixels-{size}", device=device)


RESNET18_RANDOM_INFO = EncoderInfo(
    family="CNN", embed_dim=512, params_m=11.18, training="None", pretrain_data="None",
    library="torchvision", arch="resnet18, fc removed, random init, native resolution",
    notes="seeded random weights: a baseline for what architecture alone gives")


@ENCODERS.register("resnet18.random_native", info=RESNET18_RANDOM_INFO, source="offline",
                   variant_of="resnet18")
def resnet18_random(*, device: str = "cpu", seed: int = 0, **_: Any) -> Encoder:
    """torchvision ResNet18, random weights from ``seed``, at the frame's native size."""
    spec = ZOO["resnet18"]
    with seeded_torch(seed):
        module = spec.build()
    pre = Preprocess(input_size=None, resize=None)
    # the hash keeps the baseline's first name, so embedding caches written under it stay valid
    return Encoder("resnet18.random_native", RESNET18_RANDOM_INFO, pre, module,
                   weights_origin=f"random-init (seed {seed})",
                   weights_hash=random_state_hash("resnet18-random", seed), device=device)


#: Old names -> registered names (see the module docstring).
ENCODER_ALIASES: dict[str, str] = {
    "resnet18-random": "resnet18.random_native",
    "resnet18-random-224px": f"resnet18{RANDOM_TAG}",
    **{f"{z}{RANDOM_SUFFIX}": f"{z}{RANDOM_TAG}" for z in ZOO if z != "resnet18"},
}
for _old, _new in ENCODER_ALIASES.items():
    ENCODERS.alias(_old, _new)


def _bc_factory(domain: str) -> Callable[..., Encoder]:
    def factory(*, frameset: Any = None, camera: str | None = None, device: str = "cpu",
                seed: int = 0, state: Any = None, stored_in: str | None = None,
                **kw: Any) -> Encoder:
        if state is not None:  # stored in a policy checkpoint (plain tensors)
            from realgap.encoders.bc import bc_encoder_from_state

            return bc_encoder_from_state(state, domain, device=device, stored_in=stored_in)
        if frameset is None:
            raise ConfigError(
                f"encoder 'bc-{domain}' is trained by realgap on a FrameSet: pass frameset=FS "
                f"(realgap gap does this with --frames) or call train_bc_encoder"
            )
        from realgap.encoders.bc import train_bc_encoder

        kw = {k: v for k, v in kw.items() if k not in ("weights", "random_init")}
        return train_bc_encoder(frameset, domain=domain, camera=camera, rng=seed, device=device, **kw)

    return factory


#: The BC encoders realgap trains itself: registered name -> training domain.
BC_DOMAINS: dict[str, str] = {f"bc-{d}": d for d in ("sim", "sim-nominal")}

for _dom in BC_DOMAINS.values():
    ENCODERS.add(f"bc-{_dom}", _bc_factory(_dom), source="trained", info=EncoderInfo(
        family="CNN", embed_dim=64, params_m=0.068, training="Behaviour cloning",
        pretrain_data=f"This FrameSet ({_dom} domain)", library="realgap",
        arch="SmallConvGN + spatial softmax (realgap.encoders.e2e)",
        notes=f"trained end-to-end by realgap on the {_dom} frames' actions"))


def encoder_state(enc: Encoder) -> dict[str, Any] | None:
    """What a policy checkpoint must store to rebuild ``enc`` in another process, or None
    when its registry name (and weights file) rebuild it.

    BC encoders (``bc-*``) are trained from a FrameSet that a rollout worker does not have:
    their architecture settings and weights are stored as plain tensors
    (:func:`realgap.encoders.bc.bc_encoder_state`) and read back with
    ``create_encoder(name, state=..., stored_in=PATH)``, which checks the weights' hash.
    """
    try:
        source = ENCODERS.get(enc.name).meta.get("source")
    except UnknownNameError:  # a plugin's own name: rebuilt from that name
        return None
    if source != "trained":
        return None
    from realgap.encoders.bc import bc_encoder_state

    return bc_encoder_state(enc)


def _policy_factory(name: str) -> Callable[..., Encoder]:
    def factory(*, weights: Any = None, device: str = "cpu", **_: Any) -> Encoder:
        from realgap.encoders.e2e import policy_encoder

        return policy_encoder(name, weights, device=device)

    factory.__name__ = name.replace("-", "_")
    return factory


#: A policy's end-to-end encoders (``realgap.policy.config.E2E_ENCODERS``), built from a
#: trained policy checkpoint (``weights=CKPT``): offline scores of the encoder a policy
#: trained with its head (``realgap study scores``).
POLICY_ENCODERS: dict[str, str] = {
    "small-e2e": "SmallConvGN + spatial softmax (realgap.encoders.e2e), trained with a policy head",
    "resnet18-e2e": "ResNet18 GN + spatial softmax (realgap.encoders.e2e), trained with a policy head",
}

for _name, _arch in POLICY_ENCODERS.items():
    ENCODERS.add(_name, _policy_factory(_name), source="policy", info=EncoderInfo(
        family="CNN", embed_dim=64, params_m=0.068 if _name == "small-e2e" else 11.2,
        training="Behaviour cloning (end-to-end with the policy head)",
        pretrain_data="The policy's demonstrations", library="realgap", arch=_arch,
        notes="built from a realgap policy checkpoint: weights=CKPT (gap: --weights NAME=CKPT)"))


def _import_factory(path: str) -> Callable[..., Any]:
    mod_name, _, attr = path.partition(":")
    if not mod_name or not attr:
        raise UnknownNameError(f"encoder {path!r}: expected package.module:factory")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UnknownNameError(
            f"encoder {path!r}: cannot import module {mod_name!r} ({exc}); make it importable "
            "(pip install it or add its folder to PYTHONPATH)"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownNameError(f"encoder {path!r}: module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"encoder {path!r} is not callable; point it at a factory function")
    if not _declares_encoder(obj):
        raise ConfigError(
            f"encoder {path!r} is not an encoder factory, so realgap does not call it; decorate "
            "the factory with @realgap.encoders.encoder_factory or annotate it to return "
            "realgap.encoders.Encoder or a torch.nn.Module"
        )
    return obj


def _declares_encoder(obj: Any) -> bool:
    """Whether a plugin callable says it makes encoders (marker, nn.Module class, or a
    return annotation naming :class:`Encoder` or an ``nn.Module`` subclass). Stdlib and
    builtin callables (``os:system``, ``code:interact``) declare nothing and are refused."""
    if getattr(obj, "realgap_encoder_factory", False) is True:
        return True
    nn = require("torch").nn
    if inspect.isclass(obj):
        return issubclass(obj, nn.Module)
    if not (inspect.isfunction(obj) or inspect.ismethod(obj)):
        return False
    ret = inspect.signature(obj).return_annotation
    if isinstance(ret, str):  # ``from __future__ import annotations``: match the name only
        last = ret.replace("'", "").replace('"', "").split("[")[0].split(".")[-1].strip()
        return last == "Encoder" or last.endswith("Module") or last in ("Sequential", "nn.Module")
    return inspect.isclass(ret) and (ret is Encoder or issubclass(ret, nn.Module))


def _call_filtered(factory: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return factory(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return factory(**kwargs)
    return factory(**{k: v for k, v in kwargs.items() if k in sig.parameters})


def _wrap_module(name: str, module: Any, device: str) -> Encoder:
    """Wrap a bare ``nn.Module`` from a custom factory as an :class:`Encoder`."""
    torch = require("torch")
    pre = Preprocess()
    module.eval()
    with torch.inference_mode():
        dim = int(module(torch.zeros(1, 3, *pre.input_size)).reshape(1, -1).shape[1])  # type: ignore[misc]
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    info = EncoderInfo(family="custom", embed_dim=dim,
                       params_m=round(sum(p.numel() for p in module.parameters()) / 1e6, 2),
                       training="unknown", pretrain_data="unknown", library="custom", arch=name)
    return Encoder(name, info, pre, module, weights_origin=f"custom:{name}",
                   weights_hash="sha256:" + h.hexdigest(), device=device)


def create_encoder(name: str, weights: str | os.PathLike[str] | None = None, device: str = "cpu",
                   random_init: bool = False, seed: int = 0, allow_plugins: bool | None = None,
                   **kwargs: Any) -> Encoder:
    """Build the encoder registered as ``name`` (see the module docstring for the names).

    Args:
        name: a registered name, ``<zoo name>-random``, or ``package.module:factory``
            (imported only when plugins are allowed).
        weights: path of a published checkpoint (zoo encoders); None searches the caches.
        device: torch device string.
        random_init: seeded random weights instead of the published ones (labelled).
        seed: seed of random initialisations and of training.
        allow_plugins: import ``module:factory`` names; None follows
            :func:`plugins_allowed` (False unless the CLI got ``--allow-plugin``).
        **kwargs: passed to the factory (``frameset=``, ``camera=`` for ``bc-*``).

    Raises:
        ConfigError: a ``module:factory`` name while plugins are not allowed, or a
            callable that does not declare itself an encoder factory.
        UnknownNameError: unknown name (with close matches) or unimportable factory.
        MissingFileError: a zoo encoder's checkpoint is absent (the message says how to get it).
    """
    canonical = ENCODERS.canonical(name)
    if canonical in ENCODERS and ENCODERS.get(canonical).meta.get("source") == "random" \
            and weights is not None:
        raise ConfigError(f"encoder {name!r} has random weights by name; drop weights={weights!r}")
    args = {"weights": weights, "device": device, "random_init": random_init, "seed": seed, **kwargs}
    if name not in ENCODERS and ":" in name:
        allowed = _ALLOW_PLUGINS.get() if allow_plugins is None else bool(allow_plugins)
        if not allowed:
            raise ConfigError(
                f"encoder {name!r} names Python code to import (module:factory), which realgap "
                f"runs only when you allow it: add {PLUGIN_FLAG} to the command "
                "(allow_plugins=True in Python), or use a registered name (realgap encoders list)"
            )
        out = _call_filtered(_import_factory(name), args)
    else:
        entry = ENCODERS.get(name)
        if weights is not None and entry.meta.get("source") in ("offline", "trained"):
            raise ConfigError(f"encoder {name!r} takes no checkpoint (realgap builds or trains "
                              f"its weights itself); drop weights={str(weights)!r}")
        out = _call_filtered(entry.factory, args)
    if isinstance(out, Encoder):
        if canonical != name:
            out.name = name  # an old name labels results as it always did
        return out
    torch = require("torch")
    if isinstance(out, torch.nn.Module):
        return _wrap_module(name, out, device)
    raise ConfigError(f"encoder factory {name!r} returned {type(out).__name__}; expected an "
                      "Encoder or a torch.nn.Module")


def encoder_info(name: str) -> EncoderInfo | None:
    """Metadata of a registered name without building it (None for plugins without it)."""
    info = ENCODERS.get(name).meta.get("info")
    return info if isinstance(info, EncoderInfo) else None


def weights_status(name: str) -> tuple[str, Path | None]:
    """``(status, path)``: ``"available"``, ``"missing"``, ``"corrupt"``, ``"not needed"`` or
    ``"trained on demand"``.

    Checks exactly the places :func:`create_encoder` loads from.
    """
    entry = ENCODERS.get(name)
    source = entry.meta.get("source")
    name = entry.name
    if source in ("offline", "random"):
        return "not needed", None
    if source == "trained":
        return "trained on demand", None
    if source == "policy":
        return "from a policy checkpoint", None
    if name in ZOO:
        try:
            hit = find_weights(name, ZOO[name].info)
        except DataError:  # a packaged file that differs from its pinned release
            return "corrupt", None
        return ("available", hit) if hit is not None else ("missing", None)
    return "unknown (plugin)", None
