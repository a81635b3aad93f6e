"""Factorized evaluation protocols (vla-domain-randomization-study.txt 4.1.4), Visual
Alignment Testing (visual-alignment-testing.txt III-C), success statistics and the sim-real
correlation.

Homes: the protocol-factor schema is :mod:`realgap.protocol.factors` (a leaf), protocol
files :mod:`realgap.protocol.spec`; the jobs that run them live in :mod:`realgap.jobs`
(``evaluate``, ``vat``). Submodules are imported where needed; this package imports
nothing heavy.
"""
