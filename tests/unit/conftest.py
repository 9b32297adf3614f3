"""Hypothesis profiles for the unit tests (tests/unit/test_fuzz_inputs.py).

`ci` (the default) is deterministic: derandomized and without an example database, so a run of
`tox -e unit` tries the same examples every time and CI cannot turn red on an example nobody has
seen before; 600 examples per test keep the fuzz tests near 50 CPU-seconds (about 25 s of the
2-worker unit run). `fuzz-long` explores: a random seed per run and 10,000 examples per test;
`--hypothesis-seed=N` replays a run, and a failure prints a `@reproduce_failure` blob.

    tox -e unit -- --hypothesis-profile=fuzz-long                     # the unit run, fuzz tests long
    HYPOTHESIS_PROFILE=fuzz-long pytest -n 2 tests/unit/test_fuzz_inputs.py  # tox does not pass this variable
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

# A bomb or a deep structure that is not refused shows up as a slow example, not as a hang.
_COMMON = dict(deadline=timedelta(seconds=5), database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

settings.register_profile("ci", max_examples=600, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("fuzz-long", max_examples=10_000, derandomize=False, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
