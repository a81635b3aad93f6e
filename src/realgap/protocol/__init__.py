"""Factorized evaluation protocols, Visual Alignment Testing, success statistics and the
sim-real correlation (issue 4). Submodules are imported where needed; this package
imports nothing heavy."""
