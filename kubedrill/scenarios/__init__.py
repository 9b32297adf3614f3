"""Scenarios compose the pipeline stages (objects, probes, a procedure, records) into one drill
whose record the checkers judge; suites, meta-tests and benchmarks share them."""
