"""The report's sections, one module each, found through a registry.

A section is a :class:`Section`: an anchor, a title, the run kinds it renders and a
``render(db) -> str | None`` (``None``: nothing to show). :func:`register_section` adds one
(each module here registers its own at import); plugins add theirs through the
``realgap.report_sections`` entry-point group (the entry point loads to a callable returning
a :class:`Section`). ``realgap report`` renders, in ``order``, every section registered for a
kind of run the database holds; sections registered for :data:`ANY_KIND` (provenance, the
comparison across runs) render for every database.

Sections read the database only through :mod:`realgap.store` (never ``realgap.jobs``), so a
report can be rebuilt without MuJoCo, torch or a GPU.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from realgap._registry import Registry

#: ``kinds`` of a section that renders for every database.
ANY_KIND = "*"


class ReadView(Protocol):
    """What a section may call on the database (a :class:`realgap.store.ResultsDB`, or the
    report's view of one that pins the runs the user picked)."""

    path: Any

    def latest_run(self, kind: str) -> str | None: ...
    def runs(self, kind: str | None = None) -> Any: ...
    def query(self, sql: str, params: list[Any] | None = None) -> Any: ...
    def scores(self, run_id: str | None = None) -> Any: ...
    def subjects(self, run_id: str | None = None) -> Any: ...
    def outcomes(self, run_id: str | None = None) -> Any: ...
    def artifacts(self, run_id: str | None = None) -> Any: ...


Render = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Section:
    """One report section: ``<section id=anchor><h2>title</h2>render(db)</section>``."""

    name: str
    anchor: str
    title: str
    kinds: tuple[str, ...]
    order: int
    render: Render

    def applies_to(self, kinds: set[str]) -> bool:
        """Whether a database holding runs of ``kinds`` gets this section."""
        return ANY_KIND in self.kinds or bool(kinds & set(self.kinds))


SECTIONS: Registry[Section] = Registry("report section", entry_point_group="realgap.report_sections")

#: Built-in section modules (imported by :func:`sections`, each registering itself).
BUILTIN: tuple[str, ...] = ("verdict", "gap", "coverage", "embedding_map", "saliency",
                            "rollout", "protocol", "vat", "correlation", "study", "study_dr",
                            "dynamics", "comparison", "provenance")


def register_section(name: str, *, anchor: str, title: str, kinds: tuple[str, ...],
                     order: int) -> Callable[[Render], Render]:
    """Decorator on a section's ``render``: registers it as ``name``."""
    def deco(render: Render) -> Render:
        section = Section(name, anchor, title, tuple(kinds), int(order), render)
        SECTIONS.add(name, lambda: section, kinds=tuple(kinds), order=int(order))
        return render
    return deco


def sections() -> list[Section]:
    """Every registered section (built-in and plugins), in page order."""
    for mod in BUILTIN:
        importlib.import_module(f"{__name__}.{mod}")
    found = [SECTIONS.create(entry.name) for entry in SECTIONS]
    return sorted(found, key=lambda s: (s.order, s.name))


__all__ = ["ANY_KIND", "BUILTIN", "SECTIONS", "ReadView", "Section", "register_section",
           "sections"]
