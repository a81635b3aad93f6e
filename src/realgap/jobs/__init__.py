"""The main jobs: ``gap`` (encoder sim-to-real report) and ``demo`` (``gap`` on the embedded default).

``realgap.jobs.gap.run_gap(GapConfig) -> GapResult`` and ``realgap.jobs.demo.run_demo(out)``;
the database layout they write is fixed in :mod:`realgap.store.gap`. Importing this
package stays light (no torch, no mujoco).
"""
