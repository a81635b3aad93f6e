"""Evaluation protocols as data: a base configuration plus one-factor-at-a-time conditions.

A protocol is a versioned JSON file (``realgap/protocol/protocols/<name>.json``; the
default is ``tabletop-v1``). It follows the real-world evaluation of
vla-domain-randomization-study.txt (section 4.1.4 and appendix 0.C.1): evaluate under a
canonical *base* configuration, then vary exactly one factor at a time (background,
lighting, distractors at several counts, object instance, spatial position on a grid,
camera pose, table height) keeping every other factor at its base value. Every condition
runs the same fixed seeds, so every policy, and every condition, meets the same initial
states.

File layout (``format_version`` 1)::

    {"format": "realgap-protocol", "format_version": 1,
     "name": "tabletop-v1", "version": "1.0.0", "description": "...",
     "tasks": ["reach-mug", ...],          # tasks it is written for (informative)
     "trials": 10,                           # trials per condition
     "seed": 1000,                           # trial i of every condition uses seed + i
     "base": {"BG": "nominal", "LT": "nominal", ...},   # one value for each factor
     "conditions": [{"name": "BG-wood", "factor": "BG", "value": "photo:wood"}, ...]}

The base condition (``name = "base"``) is implicit and always evaluated first.
Validation on load names the file and the offending entry on one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from realgap._registry import Registry
from realgap.errors import (
    ConfigError,
    DataError,
    FormatVersionError,
    MissingFileError,
    UnknownNameError,
)
from realgap.protocol.factors import FACTORS, check_settings, factor

FORMAT = "realgap-protocol"
FORMAT_VERSION = 1

__all__ = ["FACTORS", "FORMAT", "FORMAT_VERSION", "PROTOCOLS", "Condition", "ProtocolSpec",
           "available_protocols", "load_protocol", "parse_protocol"]


@dataclass(frozen=True)
class Condition:
    """One protocol condition: ``factor`` set to ``value``, every other factor at base.

    ``factor`` is ``"base"`` (and ``value`` None) for the base condition.
    """

    name: str
    factor: str
    value: Any = None

    @property
    def is_base(self) -> bool:
        return self.factor == "base"


@dataclass(frozen=True)
class ProtocolSpec:
    """A loaded, validated protocol.

    Attributes:
        name, version, description: identity (the name and version go into results).
        tasks: tasks the protocol is written for.
        trials: trials per condition.
        seed: trial ``i`` of every condition uses seed ``seed + i``.
        base: the base value of every factor.
        conditions: the base condition first, then one condition per varied value.
        source: the file it was read from.
    """

    name: str
    version: str
    trials: int
    seed: int
    base: Mapping[str, Any]
    conditions: tuple[Condition, ...]
    tasks: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def seeds(self) -> list[int]:
        """The seeds of trials ``0..trials-1``, shared by all conditions."""
        return [self.seed + i for i in range(self.trials)]

    def settings(self, cond: Condition) -> dict[str, Any]:
        """The full factor setting of a condition: the base with one factor replaced."""
        s = dict(self.base)
        if not cond.is_base:
            s[cond.factor] = cond.value
        return s

    def with_trials(self, trials: int | None) -> ProtocolSpec:
        """The same protocol with ``trials`` per condition (None keeps the file's)."""
        if trials is None:
            return self
        from dataclasses import replace

        _check_trials(trials, "--trials")
        return replace(self, trials=int(trials))


def _check_trials(trials: Any, where: str) -> None:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"{where}: trials must be a positive integer, got {trials!r}; "
                          "use 1 or more trials per condition")


#: Evaluation protocols by name: each factory returns the protocol's JSON text. The shipped
#: files (``realgap/protocol/protocols/*.json``) are registered below; installed packages
#: add theirs through the entry-point group ``realgap.protocols`` (a factory returning the
#: JSON text, or a dict).
PROTOCOLS: Registry[Any] = Registry("protocol", entry_point_group="realgap.protocols")


def _shipped(name: str) -> Any:
    return lambda: (resources.files("realgap.protocol") / "protocols" / f"{name}.json"
                    ).read_text(encoding="utf-8")


for _file in sorted(resources.files("realgap.protocol").joinpath("protocols").iterdir(),
                    key=lambda p: p.name):
    if _file.name.endswith(".json"):
        PROTOCOLS.add(_file.name[:-5], _shipped(_file.name[:-5]), source="shipped")


def available_protocols() -> list[str]:
    """Names of the registered protocols (shipped with realgap, or from plugins)."""
    return PROTOCOLS.names()


def _resolve(name_or_path: str | Path) -> tuple[Path | None, str, str]:
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        if not p.is_file():
            raise MissingFileError(f"--protocol {p}: no such protocol file")
        return p, str(p), p.read_text(encoding="utf-8")
    try:
        entry = PROTOCOLS.get(str(name_or_path))
    except UnknownNameError as exc:
        raise UnknownNameError(f"--protocol: {exc}; or pass a .json file") from None
    text = entry.factory()
    if isinstance(text, dict):
        text = json.dumps(text)
    return None, f"protocols/{entry.name}.json", str(text)


def load_protocol(name_or_path: str | Path) -> ProtocolSpec:
    """Load and validate a protocol by shipped name (``tabletop-v1``) or JSON path."""
    _, label, text = _resolve(name_or_path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_protocol(raw, label)


def parse_protocol(raw: Any, label: str = "<protocol>") -> ProtocolSpec:
    """Validate a protocol dict (see the module docstring); ``label`` names it in errors."""
    if not isinstance(raw, dict):
        raise DataError(f"{label}: a protocol is a JSON object, got {type(raw).__name__}")
    if raw.get("format") != FORMAT:
        raise DataError(f"{label}: format {raw.get('format')!r}, expected {FORMAT!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise FormatVersionError(f"{label}: protocol format_version {raw.get('format_version')!r}, "
                                 f"this realgap reads {FORMAT_VERSION}")
    for key in ("name", "trials", "seed", "base", "conditions"):
        if key not in raw:
            raise DataError(f"{label}: missing key {key!r}")
    _check_trials(raw["trials"], f"{label}: 'trials'")
    if isinstance(raw["seed"], bool) or not isinstance(raw["seed"], int) or raw["seed"] < 0:
        raise DataError(f"{label}: 'seed' must be a non-negative integer, got {raw['seed']!r}")
    base = raw["base"]
    if not isinstance(base, dict):
        raise DataError(f"{label}: 'base' must be an object factor -> value")
    # Value faults are ConfigErrors here as on the command line (one fault, one error).
    check_settings(base, where=f"{label}: base")
    missing = [f for f in FACTORS if f not in base]
    if missing:
        raise DataError(f"{label}: 'base' lacks a value for factor(s) {', '.join(missing)}")
    conds = [Condition("base", "base", None)]
    seen = {"base"}
    if not isinstance(raw["conditions"], list):
        raise DataError(f"{label}: 'conditions' must be a list")
    for i, c in enumerate(raw["conditions"]):
        where = f"conditions[{i}]"
        if not isinstance(c, dict) or set(c) != {"name", "factor", "value"}:
            raise DataError(f"{label}: {where} must have exactly the keys name, factor, value "
                            "(one factor per condition)")
        factor(c["factor"], f"{label}: {where}")
        name = str(c["name"])
        if name in seen:
            raise DataError(f"{label}: {where} repeats condition name {name!r}")
        seen.add(name)
        if c["value"] == base[c["factor"]]:
            raise DataError(f"{label}: {where} ({name}) sets {c['factor']} to its base value "
                            f"{c['value']!r}; a condition must change its factor")
        check_settings({c["factor"]: c["value"]}, where=f"{label}: {where} ({name})")
        conds.append(Condition(name, c["factor"], c["value"]))
    return ProtocolSpec(
        name=str(raw["name"]), version=str(raw.get("version", "")), trials=int(raw["trials"]),
        seed=int(raw["seed"]), base=dict(base), conditions=tuple(conds),
        tasks=tuple(raw.get("tasks", ())), description=str(raw.get("description", "")),
        source=label, raw=raw,
    )

