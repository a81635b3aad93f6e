"""Command-line options generated from a config dataclass and its field docstrings.

One option per field: ``--n-boot`` for ``n_boot``, its default the field's default, its help
the field's docstring (the string literal under it, read from the class source), its value
type from the annotation. So the library's config and the CLI cannot drift: a new field (or
a changed default) appears in ``--help`` by itself. :func:`config_from_args` builds the
dataclass back from the parsed namespace.

Annotations handled: ``int``, ``float``, ``str``, each also ``| None``,
``tuple[str|int|float, ...]`` (a comma list on the command line) and ``bool`` (``--x`` and
``--no-x``). Anything else (nested
tuples, ``Any``) needs an entry in ``overrides`` or ``skip``: an unhandled field is a
``TypeError`` when the parser is built, caught by the CLI contract test, not at a user's run.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import itertools
import re
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from realgap.cli._args import seed as seed_type


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of a dataclass, from the string literal under each field
    (PEP 257 attribute docstrings; Python keeps them only in the source), else from the
    class docstring's Google-style ``Attributes:`` section (``name: text`` or
    ``a, b: text`` shared by several fields)."""
    docs = _attributes_section(inspect.getdoc(cls) or "")
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (frozen app): help without docstrings
        return docs
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = nxt.value.value
    return docs


_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*:\s*(.*)$")


def _attributes_section(doc: str) -> dict[str, str]:
    """``{name: text}`` from the ``Attributes:`` section of a Google-style docstring."""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    indent = None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break  # the section ended
        match = _ENTRY.match(line.strip()) if depth == indent else None
        if match:
            names = [n.strip() for n in match.group(1).split(",")]
            for name in names:
                out[name] = match.group(2)
        else:
            for name in names:
                out[name] += " " + line.strip()
    return out


_ROLE = re.compile(r":([a-z]+):`(~?)([^`]+)`")


def _role_text(match: re.Match[str]) -> str:
    """``:class:`~a.B``` -> ``B`` (Sphinx's ``~``: last part only); a module keeps its path."""
    role, tilde, target = match.groups()
    return target.rsplit(".", 1)[-1] if tilde or role != "mod" else target


def plain(doc: str) -> str:
    """A docstring as one line of ``--help`` text: reST roles and literals unwrapped
    (``:class:`~a.B``` -> ``B``, ``:mod:`a.b``` -> ``a.b``), whitespace collapsed, ``%`` escaped for argparse."""
    text = _ROLE.sub(_role_text, doc)
    text = text.replace("``", "")
    text = " ".join(text.split())
    return text.replace("%", "%%")


def csv(text: str) -> tuple[str, ...]:
    """A comma list: ``"a, b,"`` -> ``("a", "b")``."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def csv_or_none(text: str) -> tuple[str, ...]:
    """A comma list where ``none`` (or nothing) is the empty list."""
    names = csv(text)
    return () if tuple(n.lower() for n in names) in ((), ("none",)) else names


def _csv_of(kind: type) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(s) for s in csv(text))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__}s such as 1,2, got {text!r}") from None

    parse.__name__ = f"{kind.__name__} list"
    return parse


def float_list(text: str) -> tuple[float, ...]:
    """A comma list of numbers: ``"0.25,4"`` -> ``(0.25, 4.0)``."""
    return _csv_of(float)(text)


def _unwrap_optional(tp: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _value_type(name: str, tp: Any) -> tuple[Callable[[str], Any], str | None]:
    """(argparse ``type``, metavar) for a field's annotation."""
    tp = _unwrap_optional(tp)
    if name == "seed" and tp is int:
        return seed_type, None
    if tp in (int, float, str):
        return tp, None
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in (str, int, float):
            kind = args[0]
            return (csv if kind is str else _csv_of(kind)), f"{kind.__name__.upper()}[,...]"
    raise TypeError(f"no command-line form for field {name!r}: {tp!r}; pass it in "
                    "overrides or skip")


def flag(name: str) -> str:
    """The option string of a field: ``n_boot`` -> ``--n-boot``."""
    return "--" + name.replace("_", "-")


def add_dataclass_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[str, ...]:
    """Add one option per field of the dataclass ``cls`` to ``parser``; returns the fields.

    Args:
        only: the fields to add, in this order (default: every field, in class order).
        skip: fields not on the command line (set by the command itself).
        overrides: per field, ``add_argument`` keyword arguments replacing the generated
            ones (``flags``: the option strings, e.g. ``("--task", "--tasks")``). The
            default stays the field's unless overridden.
    """
    overrides = overrides or {}
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = tuple(only) if only is not None else tuple(fields)
    skipped = set(skip)
    added = []
    for name in names:
        if name in skipped:
            continue
        f = fields[name]
        factory = f.default_factory
        required = f.default is dataclasses.MISSING and factory is dataclasses.MISSING
        default: Any = f.default
        if default is dataclasses.MISSING:
            default = None if isinstance(factory, dataclasses._MISSING_TYPE) else factory()
        kwargs: dict[str, Any] = {"dest": name, "help": plain(docs.get(name, ""))}
        extra = dict(overrides.get(name, {}))
        flags = tuple(extra.pop("flags", (flag(name),)))
        if hints[name] is bool and "action" not in extra:
            kwargs["action"] = argparse.BooleanOptionalAction  # --x / --no-x
        elif "type" not in extra and "action" not in extra:
            kind, metavar = _value_type(name, hints[name])
            kwargs["type"] = kind
            if metavar:
                kwargs["metavar"] = metavar
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        kwargs.update(extra)
        parser.add_argument(*flags, **kwargs)
        added.append(name)
    return tuple(added)


def config_from_args(cls: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """``cls(**...)`` from the namespace: every field the namespace holds (lists become
    tuples; None where the field's default is not None keeps the default), then ``fixed``."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in fixed or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        if value is None and f.default is not None and f.default is not dataclasses.MISSING:
            continue
        if value is None and f.default_factory is not dataclasses.MISSING:
            continue
        kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs, **fixed)
