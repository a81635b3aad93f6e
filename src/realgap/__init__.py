"""realgap: measure, diagnose and help close the sim-to-real gap in robot learning.

Subpackages (the folder layout is the architecture):

- :mod:`realgap.data`      FrameSet: frames with provenance, readers, validation
- :mod:`realgap.sim`       MuJoCo tabletop tasks, domain randomization, dataset generation
- :mod:`realgap.encoders`  encoder zoo, preprocessing, embedding cache
- :mod:`realgap.metrics`   DIS, AS, distribution and coverage gaps, statistics
- :mod:`realgap.explain`   saliency maps
- :mod:`realgap.policy`    policies, training, rollouts
- :mod:`realgap.protocol`  factorized evaluation, Visual Alignment Testing, correlation
- :mod:`realgap.dynamics`  dynamics gap, degradation, system identification
- :mod:`realgap.store`     results database (DuckDB)
- :mod:`realgap.report`    HTML report built from the results database

``import realgap`` imports none of the heavy optional dependencies.
"""

__version__ = "0.1.0"
