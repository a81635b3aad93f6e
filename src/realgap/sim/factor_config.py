"""Validate factor choices: names, granularity per factor, and user ranges.

The granularity rules follow vla-domain-randomization-study.txt, section 3.2.3
("Randomization Granularity"): ``episode`` (sampled at reset) or ``frame`` (resampled
every step). Factors that change what the robot can do (TD, TH, PHYS) stay episode-wise:
asking for them frame-wise in a per-factor mapping is a ConfigError; a single string for
all factors is coerced to ``episode`` for them.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from realgap.errors import ConfigError
from realgap.sim.factors import FACTOR_CLASSES, FACTOR_NAMES, RANGE_CLASSES

GRANULARITIES: tuple[str, ...] = ("episode", "frame")


def range_class(name: str) -> type:
    """The frozen range dataclass of factor ``name`` (e.g. ``CPRange`` for ``"CP"``)."""
    return RANGE_CLASSES[name]


def check_factor_ranges(ranges: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``factor_ranges``: factor name -> its range dataclass, or a dict of its
    fields (``{"CP": {"pos_offset": [0.1, 0.1, 0.1]}}``, JSON-friendly; lists become tuples).
    Unknown factors or fields raise ConfigError."""
    out: dict[str, Any] = {}
    for name, value in (ranges or {}).items():
        check_factor_names([name], arg="factor_ranges")
        cls = RANGE_CLASSES[name]
        if isinstance(value, cls):
            out[name] = value
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(f"factor_ranges[{name!r}] must be a {cls.__name__} or a dict of "
                              f"its fields, got {type(value).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(value) - fields)
        if bad:
            raise ConfigError(f"factor_ranges[{name!r}]: unknown field {bad[0]!r}; "
                              f"{cls.__name__} has {', '.join(sorted(fields))}")
        out[name] = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    return out


def check_factor_names(
    names: Sequence[str] | str | None, arg: str = "randomize"
) -> tuple[str, ...]:
    """Validate factor names (``"BG,LT"`` or a sequence); unknown names raise ConfigError."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out = []
    for n in names:
        if n not in FACTOR_CLASSES:
            close = difflib.get_close_matches(str(n).upper(), list(FACTOR_CLASSES), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{arg}: unknown factor {n!r}{hint}; known factors: "
                              f"{', '.join(FACTOR_NAMES)}")
        if n not in out:
            out.append(n)
    return tuple(out)


def resolve_granularity(
    randomize: Sequence[str], granularity: str | Mapping[str, str]
) -> dict[str, str]:
    """Granularity per randomized factor (see the module docstring for the rules).

    Args:
        randomize: validated factor names.
        granularity: ``"episode"`` / ``"frame"`` for all factors, or a mapping
            factor -> granularity (factors missing from it default to ``"episode"``).

    Returns:
        ``{factor: "episode" | "frame"}`` for every factor in ``randomize``.
    """
    if isinstance(granularity, str):
        if granularity not in GRANULARITIES:
            raise ConfigError(f"granularity={granularity!r} is not valid; use 'episode' or "
                              "'frame' (or a mapping factor -> granularity)")
        return {n: "episode" if FACTOR_CLASSES[n].episode_only else granularity
                for n in randomize}
    if not isinstance(granularity, Mapping):
        raise ConfigError(f"granularity must be 'episode', 'frame' or a mapping, got "
                          f"{type(granularity).__name__}")
    check_factor_names(list(granularity), arg="granularity")
    out = {}
    for n in randomize:
        gr = granularity.get(n, "episode")
        if gr not in GRANULARITIES:
            raise ConfigError(f"granularity[{n!r}]={gr!r} is not valid; use 'episode' or "
                              "'frame'")
        if gr == "frame" and FACTOR_CLASSES[n].episode_only:
            raise ConfigError(f"granularity[{n!r}]='frame' is not allowed: {n} changes task "
                              "feasibility and stays episode-wise; use 'episode'")
        out[n] = gr
    for n in granularity:
        if n not in randomize:
            raise ConfigError(f"granularity names factor {n!r}, which is not in randomize="
                              f"{list(randomize)}; add it to randomize or drop it")
    return out
