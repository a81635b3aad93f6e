"""Provenance: every run with its kind, time, FrameSet hash, version and configuration."""

from __future__ import annotations

import json

from realgap.report._html import esc, table
from realgap.report.sections import ANY_KIND, register_section
from realgap.store import ResultsDB

ANCHOR = "provenance"
TITLE = "Provenance"


def render(db: ResultsDB) -> str | None:
    runs = db.runs()
    if runs.empty:
        return None
    subjects = db.subjects()
    view = runs[["run_id", "kind", "name", "created", "status", "frameset_hash", "realgap_version"]]
    view = view.assign(created=view["created"].astype(str))
    parts = [table(view, table_id="runs-table", caption="All runs in this database, oldest first.")]
    for _, r in runs.iterrows():
        cfg = json.dumps(json.loads(r["config"] or "{}"), indent=1, sort_keys=True)
        subs = subjects[subjects.run_id == r["run_id"]]
        sub_lines = "".join(
            f"<li><b>{esc(s.subject)}</b> ({esc(s.kind)}): <code>{esc(s.meta)}</code></li>"
            for s in subs.itertuples()
        )
        parts.append(
            f"<details><summary>run {esc(r['run_id'])} ({esc(r['kind'])})</summary>"
            f"<pre>{esc(cfg)}</pre><ul>{sub_lines}</ul></details>"
        )
    return "".join(parts)


register_section("provenance", anchor=ANCHOR, title=TITLE, kinds=(ANY_KIND,), order=110)(render)
