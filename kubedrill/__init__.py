"""kubedrill: rehearse cluster maintenance against real components before production does.

The engine is a pipeline, one package per stage:
cluster -> workload -> load -> disrupt -> check -> report.
Load and probes only *record* (kubedrill.record); checkers are pure functions over records that
return a Verdict (kubedrill.check.verdict); reports render verdicts. Nothing here imports pytest,
so the engine is usable from scripts and benchmarks too.
"""

__version__ = "0.1.0"
