"""One generic registry for encoders, tasks, factors, heads and protocols.

Modelled on timm's ``register_model`` / ``create_model``: factories are registered under
a name with metadata; an unknown name fails with the closest matches; plugins arrive
through an entry-point group.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from realgap.errors import ConfigError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered factory and its metadata."""

    name: str
    factory: Callable[..., T]
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Named factories of one kind.

    Args:
        kind: what is registered ("encoder", "task", ...), used in error messages.
        entry_point_group: optional ``importlib.metadata`` group scanned once, lazily,
            for plugins; each entry point must load to a factory callable.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._variants: dict[str, Entry[T]] = {}
        self._plugins_loaded = entry_point_group is None

    def register(
        self, name: str | None = None, **meta: Any
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@REGISTRY.register("name", family="cnn")`` on a factory."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name or factory.__name__, factory, **meta)
            return factory

        return deco

    def add(self, name: str, factory: Callable[..., T], **meta: Any) -> None:
        """Register ``factory`` under ``name``; a duplicate name is an error."""
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, factory, dict(meta))

    def add_variant(self, base: str, tag: str, factory: Callable[..., T], **meta: Any) -> None:
        """Register ``base.tag`` (timm's ``model.tag``): a variant of a registered name
        (other weights or preprocessing). Variants resolve like names but are not listed
        by :meth:`names` or iteration (:meth:`variants` lists them)."""
        name = f"{base}.{tag}"
        if base not in self._entries:
            raise ConfigError(f"{self.kind} {base!r} is not registered; register it before "
                              f"its variant {name!r}")
        if name in self._entries or name in self._variants:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._variants[name] = Entry(name, factory, {"variant_of": base, **meta})

    def variants(self, base: str | None = None) -> list[str]:
        """Registered variant names (of ``base``, or all), sorted."""
        return sorted(n for n, e in self._variants.items()
                      if base is None or e.meta["variant_of"] == base)

    def alias(self, old: str, name: str) -> None:
        """Let ``old`` (a former or shorthand name) resolve to the registered ``name``."""
        if old in self._entries or old in self._aliases:
            raise ConfigError(f"{self.kind} {old!r} is already registered")
        self._aliases[old] = name

    def canonical(self, name: str) -> str:
        """``name`` with an alias resolved (unknown names come back unchanged)."""
        return name if name in self._entries or name in self._variants \
            else self._aliases.get(name, name)

    def aliases(self) -> dict[str, str]:
        """Alias -> registered name."""
        return dict(self._aliases)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.entry_point_group or ""):
            if ep.name not in self._entries:
                self._entries[ep.name] = Entry(ep.name, ep.load(), {"plugin": ep.value})

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``; unknown names fail listing the close matches."""
        self._load_plugins()
        key = self.canonical(name)
        try:
            return self._entries[key] if key in self._entries else self._variants[key]
        except KeyError:
            close = difflib.get_close_matches(
                name, [*self._entries, *self._variants, *self._aliases], n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (known: {known})"
            ) from None

    def create(self, name: str, /, **kwargs: Any) -> T:
        """Call the factory registered under ``name`` with ``kwargs``."""
        return self.get(name).factory(**kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted (aliases not included: :meth:`aliases`)."""
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        """True for registered names and their aliases."""
        self._load_plugins()
        return name in self._entries or name in self._aliases or name in self._variants

    def __iter__(self) -> Iterator[Entry[T]]:
        self._load_plugins()
        return iter([self._entries[n] for n in sorted(self._entries)])

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._entries)
