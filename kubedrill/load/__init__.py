"""Load and probes: they record every request on the test's monotonic clock and never judge.

    LoadRunner   continuous locust load in a subprocess (kubedrill/load/runner.py)
    SlowProbe    a few long requests held in flight across a termination (probe.py)
    LocalTarget  an in-process HTTP target for testing the tooling without Docker (target.py)
"""

from kubedrill.load.probe import SlowProbe
from kubedrill.load.requestlog import parse_request_lines, read_request_logs
from kubedrill.load.runner import LoadError, LoadRunner, LoadStats
from kubedrill.load.target import LocalTarget

__all__ = ["LoadError", "LoadRunner", "LoadStats", "LocalTarget", "SlowProbe", "parse_request_lines", "read_request_logs"]
