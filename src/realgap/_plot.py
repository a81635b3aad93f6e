"""The one home of matplotlib in realgap: headless figures whose text is always literal.

Every figure realgap draws (report sections, saliency grids, VAT maps, the generate
contact sheet) shows labels that come from users: encoder, policy, task and condition
names, run and dataset directories. matplotlib reads ``$...$`` in any text as mathtext,
so a label such as ``$\\foo$`` used to end every later ``realgap report`` in a parser
traceback, and ``$x$`` was silently drawn as an italic x. Figures here therefore:

- are made by :func:`subplots` / :func:`figure`, plain :class:`matplotlib.figure.Figure`
  objects outside pyplot's global figure registry, rendered by the Agg canvas. No
  backend is switched and no window can open, whatever ``MPLBACKEND`` says, and nothing
  is left open in a caller's notebook;
- are drawn inside :func:`literal_text` (a decorator on each figure-making function),
  which turns ``text.parse_math`` off for the duration of the call, so every title, tick
  label, legend entry and annotation created or laid out in it is shown verbatim. The
  previous rc settings are restored afterwards (a library leaves process state as found).

Matplotlib is optional (the ``report`` extra): figures are made here, through
:func:`realgap._optional.require`; other modules import only drawing helpers
(``matplotlib.lines``, ``colormaps``), never ``pyplot`` or a backend.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from realgap._optional import require

_P = ParamSpec("_P")
_R = TypeVar("_R")


def literal_text(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a figure-making function with mathtext off: ``$`` in any label stays a ``$``.

    The rc setting is read when each text artist is created and again when it is laid
    out (``tight_layout``, ``savefig``), so the whole function, not only the save, runs
    inside the context.
    """

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        mpl = require("matplotlib", extra="report")
        with mpl.rc_context({"text.parse_math": False}):
            return func(*args, **kwargs)

    return wrapper


def figure(**kwargs: Any) -> Any:
    """A new :class:`matplotlib.figure.Figure` (``figsize`` in inches, ``dpi``, ...),
    not registered with pyplot, so it needs no backend and no closing."""
    require("matplotlib", extra="report")
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             squeeze: bool = True, **kwargs: Any) -> tuple[Any, Any]:
    """``(figure, axes)`` like :func:`matplotlib.pyplot.subplots`, on a :func:`figure`.

    ``kwargs`` go to :meth:`Figure.subplots` (``sharex``, ``sharey``, ...).
    """
    fig = figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


def png_bytes(fig: Any, dpi: int = 110, *, tight: bool = True) -> bytes:
    """Render ``fig`` to PNG bytes (Agg), cropped to its content when ``tight``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def save_png(fig: Any, path: str | Path, dpi: int = 110, **kwargs: Any) -> Path:
    """Write ``fig`` to ``path`` as a PNG (``kwargs`` go to ``savefig``: ``facecolor``, ...)."""
    p = Path(path)
    fig.savefig(p, format="png", dpi=dpi, **kwargs)
    return p
