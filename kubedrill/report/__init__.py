"""Reports: what a release gate reads after a run.

- model.py    TestResult, what one test contributes (filled by the pytest plugin)
- series.py   plot data conventions and builders for checkers (Verdict.series)
- results.py  the results.json document, its gate decision; results.schema.json is its schema
- meta.py     run metadata: versions, host, git commit, the command to reproduce
- svg.py, plots.py, html.py   report.html: inline CSS and SVG, no external assets
- summary.py  the plain-text gate table for the terminal
- writer.py   writes reports/latest/ and the timestamped copy
"""
