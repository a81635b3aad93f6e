"""Moved to :mod:`realgap.store.gap` (the layout of a ``gap`` run belongs to the store,
which the job writes and the report reads); these names stay importable from here."""

from realgap.store.gap import *
from realgap.store.gap import __all__  # noqa: F401
