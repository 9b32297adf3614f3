"""Checkers: pure functions from records and expectations to a Verdict. No I/O, no clocks."""
