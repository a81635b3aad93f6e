"""The protocol-factor schema: the one place that says which factors an evaluation
protocol may set, what each value means, how it is written on a command line, and
which values are refused.

The vocabulary follows the real-world evaluation of vla-domain-randomization-study.txt
(section 4.1.4 and appendix 0.C.1): background, lighting, distractors at a count,
object instance, spatial position on a grid, camera pose, table height. How a value
becomes a change of the simulator lives in :mod:`realgap.sim.conditions`; this module
only knows the values, so protocol files (:mod:`realgap.protocol.spec`), ``realgap
rollout --set`` and the environment wrapper all check them here and raise the same
:class:`~realgap.errors.ConfigError` for the same fault.

It is a leaf: it imports nothing of realgap but :mod:`realgap.errors`.

======  =========================================  =====================================
factor  value (JSON / Python)                      ``--set`` text
======  =========================================  =====================================
BG      ``"nominal"`` or ``"library:<i>"``          ``BG=library:3``
LT      one of :data:`LT_PRESETS`                   ``LT=dim``
TD      distractor count, int >= 0                  ``TD=4``
OBJ     object instance, int in [0, N_OBJ)          ``OBJ=1``
POS     ``[dx, dy]`` offset on the grid (m)         ``POS=0.06,0``
CP      ``[dx, dy, dz]`` camera offset (m)          ``CP=0,0,0.03``
TH      table height offset (m)                     ``TH=0.03``
======  =========================================  =====================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from realgap.errors import ConfigError

#: Lighting presets of the LT factor (what each does: :mod:`realgap.sim.conditions`).
LT_PRESETS: tuple[str, ...] = ("nominal", "dim", "bright", "warm", "side")
#: Number of object instances of the OBJ factor (0 = nominal appearance).
N_OBJ_INSTANCES = 4


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _vector(n: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (list, tuple)) and len(v) == n and all(_is_num(x) for x in v)


def _bg_ok(v: Any) -> bool:
    return v == "nominal" or (isinstance(v, str) and v.startswith("library:") and v[8:].isdigit())


def _parse_floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


@dataclass(frozen=True)
class ProtocolFactor:
    """One protocol factor: its name, what a value means, and how values are checked.

    Attributes:
        name: the factor's key in protocol files and ``--set`` (``"BG"``, ...).
        meaning: what a value is, in units (shown in error messages).
        nominal: the value that changes nothing.
        valid: True for an acceptable value.
        parse: the value from its ``--set`` text (may raise ValueError).
    """

    name: str
    meaning: str
    nominal: Any
    valid: Callable[[Any], bool]
    parse: Callable[[str], Any]

    def check(self, value: Any, where: str) -> None:
        """Raise a one-line ConfigError naming ``where`` if ``value`` is not valid."""
        if not self.valid(value):
            raise ConfigError(f"{where}: {self.name} {value!r} is not valid; expected {self.meaning}")


#: The protocol factors, in protocol order.
PROTOCOL_FACTORS: dict[str, ProtocolFactor] = {f.name: f for f in (
    ProtocolFactor("BG", "'nominal' or 'library:<index>' (a texture of the env's BG library)",
                   "nominal", _bg_ok, str.strip),
    ProtocolFactor("LT", f"a lighting preset, one of {', '.join(LT_PRESETS)}", "nominal",
                   lambda v: v in LT_PRESETS, str.strip),
    ProtocolFactor("TD", "a number of table distractors (int >= 0)", 0,
                   lambda v: _is_int(v) and v >= 0, int),
    ProtocolFactor("OBJ", f"an object instance index in [0, {N_OBJ_INSTANCES})", 0,
                   lambda v: _is_int(v) and 0 <= v < N_OBJ_INSTANCES, int),
    ProtocolFactor("POS", "a target offset on the grid [dx, dy] in metres", [0.0, 0.0],
                   _vector(2), _parse_floats),
    ProtocolFactor("CP", "a camera offset [dx, dy, dz] in metres", [0.0, 0.0, 0.0],
                   _vector(3), _parse_floats),
    ProtocolFactor("TH", "a table height offset in metres", 0.0, _is_num, float),
)}

#: Factor name -> meaning (the old ``realgap.protocol.spec.FACTORS`` mapping).
FACTORS: dict[str, str] = {n: f.meaning for n, f in PROTOCOL_FACTORS.items()}
#: Every factor at the value that changes nothing.
NOMINAL: dict[str, Any] = {n: f.nominal for n, f in PROTOCOL_FACTORS.items()}


def factor(name: Any, where: str = "settings") -> ProtocolFactor:
    """The schema of factor ``name``; an unknown name is a ConfigError with close matches."""
    if name in PROTOCOL_FACTORS:
        return PROTOCOL_FACTORS[name]
    import difflib

    close = difflib.get_close_matches(str(name), list(PROTOCOL_FACTORS), n=2, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"{where}: unknown factor {name!r}{hint}; known factors: "
                      f"{', '.join(PROTOCOL_FACTORS)}")


def check_settings(settings: Mapping[str, Any], where: str = "settings") -> None:
    """Raise a one-line ConfigError for an unknown factor or an unusable value."""
    for k, v in settings.items():
        factor(k, where).check(v, where)


def parse_settings(items: Iterable[str], where: str = "--set") -> dict[str, Any]:
    """``["TD=4", "POS=0.06,0"]`` -> ``{"TD": 4, "POS": [0.06, 0.0]}``, checked."""
    out: dict[str, Any] = {}
    for item in items:
        k, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"{where} {item!r}: expected FACTOR=VALUE, e.g. TD=4")
        f = factor(k.strip(), f"{where} {item!r}")
        try:
            value = f.parse(text)
        except ValueError:
            raise ConfigError(f"{where} {item!r}: cannot read {text!r}; expected "
                              f"{f.meaning}") from None
        f.check(value, f"{where} {item!r}")
        out[f.name] = value
    return out
