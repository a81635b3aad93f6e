"""Self-contained HTML report built from the results database alone.

See :func:`realgap.report.html.build_report`. Sections live one per module in
:mod:`realgap.report.sections` and come from its registry: each declares the run kinds it
renders and returns ``None`` when the database holds nothing for it. The report reads the
database only through :mod:`realgap.store`.
"""

from realgap.report.html import build_report

__all__ = ["build_report"]
