"""Golden files of the report's HTML structure for a tiny gap run and a tiny evaluate run.

The skeleton is the tag tree with each element's ``id`` and ``class`` (run ids replaced by
``RUN``), without text, numbers or images, so a change of layout (a section gone, a table
moved, a column lost) fails here while new numbers do not. Regenerate after an intended
change with::

    REALGAP_REGEN_GOLDEN=1 python -m pytest tests/test_report_golden.py

and review the diff of ``tests/golden/``.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tiny_runs import tiny_db

from realgap.report import build_report

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("REALGAP_REGEN_GOLDEN", "") not in ("", "0")
RUN_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")
#: Elements with no closing tag.
VOID = {"br", "img", "meta", "input", "hr", "link", "col", "source", "wbr"}
#: Elements whose content is code, not structure.
OPAQUE = {"script", "style"}


class Skeleton(HTMLParser):
    """Collects one line per element: indentation by depth, the tag, ``#id`` and ``.class``."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.depth = 0
        self.opaque = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.opaque:
            return
        a = dict(attrs)
        line = "  " * self.depth + tag
        if a.get("id"):
            line += "#" + RUN_ID.sub("RUN", str(a["id"]))
        if a.get("class"):
            line += "." + ".".join(str(a["class"]).split())
        self.lines.append(line)
        if tag in OPAQUE:
            self.opaque += 1
        elif tag not in VOID:
            self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and tag not in OPAQUE:
            self.depth -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in OPAQUE:
            self.opaque = max(0, self.opaque - 1)
        elif not self.opaque and tag not in VOID:
            self.depth -= 1


def skeleton(html: str) -> str:
    parser = Skeleton()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.lines) + "\n"


def test_skeleton_keeps_structure_and_drops_numbers() -> None:
    a = skeleton("<main><section id='x'><p class='ci b'>0.5<br>1/2</p><img src='data:a'></section></main>")
    b = skeleton("<main><section id='x'><p class='ci b'>0.7<br>3/4</p><img src='data:b'></section></main>")
    assert a == b == "main\n  section#x\n    p.ci.b\n      br\n    img\n"
    assert skeleton("<main><section id='y'></section></main>") != a


@pytest.mark.parametrize("kind", ["gap", "evaluate"])
def test_report_structure_matches_its_golden_file(tmp_path: Path, kind: str) -> None:
    tiny_db(tmp_path, kind)
    got = skeleton(build_report(tmp_path).read_text(encoding="utf-8"))
    golden = GOLDEN / f"report_{kind}.txt"
    if REGENERATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing: run with REALGAP_REGEN_GOLDEN=1 once"
    want = golden.read_text(encoding="utf-8")
    if got != want:
        import difflib

        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            "golden", "now", n=2))
        pytest.fail(f"report structure of a {kind} run changed (REALGAP_REGEN_GOLDEN=1 "
                    f"regenerates after an intended change):\n{diff[:4000]}")
