"""Self-contained HTML report built from the results database alone.

See :func:`realgap.report.html.build_report`. Sections live one per module in
:mod:`realgap.report.sections`; each renders its part from the database and returns
``None`` when the database holds nothing for it.
"""

from realgap.report.html import build_report

__all__ = ["build_report"]
