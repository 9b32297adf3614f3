"""Render report.html from a results.json document: one self-contained file a release manager reads.

Order follows the questions a reader asks: may we release (the gate banner), what failed and why
(the gate table, one row per test, and the broken-run box), what exactly ran (run details), then
the evidence per suite (verdicts, figures, plots, artifacts, tracebacks). No external assets, no
JavaScript: CSS and SVG are inline, so the file opens offline and survives being mailed around.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any, Iterable

from kubedrill.report.plots import render_series

CSS = """
:root{--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;--unk:#9a6700;--unk-bg:#fff8c5;
--skip:#57606a;--skip-bg:#eaeef2;--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#ffffff;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:26px;margin:0}
h2{font-size:19px;margin:30px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:0 0 8px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
h4{font-size:13px;margin:14px 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
a{color:#0969da}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;white-space:pre-wrap;word-break:break-word}
.banner{display:flex;gap:18px;align-items:center;border-radius:10px;padding:16px 20px;border:2px solid}
.banner .badge{font-size:30px;font-weight:800;letter-spacing:.06em;padding:6px 18px;border-radius:8px;color:#fff}
.banner p{margin:4px 0 0}
.g-pass{background:var(--pass-bg);border-color:var(--pass)}.g-pass .badge{background:var(--pass)}
.g-fail{background:var(--fail-bg);border-color:var(--fail)}.g-fail .badge{background:var(--fail)}
.g-unknown{background:var(--unk-bg);border-color:var(--unk)}.g-unknown .badge{background:var(--unk)}
.counts{color:var(--muted)}
.chip{display:inline-block;font-size:11.5px;font-weight:700;padding:1px 8px;border-radius:10px;white-space:nowrap;border:1px solid}
.s-pass{color:var(--pass);background:var(--pass-bg);border-color:var(--pass)}
.s-fail,.s-error,.s-failed{color:var(--fail);background:var(--fail-bg);border-color:var(--fail)}
.s-unknown{color:var(--unk);background:var(--unk-bg);border-color:var(--unk)}
.s-skip,.s-skipped{color:var(--skip);background:var(--skip-bg);border-color:var(--skip)}
.s-passed{color:var(--pass);background:var(--pass-bg);border-color:var(--pass)}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:6px}
th,td{text-align:left;vertical-align:top;padding:6px 10px;border-bottom:1px solid var(--line)}
th{background:#f0f3f6;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
tr.r-fail td:first-child{box-shadow:inset 4px 0 var(--fail)}
tr.r-pass td:first-child{box-shadow:inset 4px 0 var(--pass)}
tr.r-skip td:first-child{box-shadow:inset 4px 0 var(--skip)}
tr.r-unknown td:first-child{box-shadow:inset 4px 0 var(--unk)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.reason{max-width:520px}
.muted{color:var(--muted)}
.box{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin-top:14px}
.box.alert{border-left:6px solid var(--fail)}
.box.alert h2{border:0;margin:0 0 6px}
.box.allowed{border-left:6px solid var(--unk)}
.test{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:12px 0}
.test.t-fail{border-left:6px solid var(--fail)}.test.t-pass{border-left:6px solid var(--pass)}
.test.t-skip{border-left:6px solid var(--skip)}.test.t-unknown{border-left:6px solid var(--unk)}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0}
figure{margin:10px 0;overflow-x:auto}
svg.plot{width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:6px}
details summary{cursor:pointer;color:var(--muted);margin-top:8px}
ul.tight{margin:4px 0;padding-left:20px}
footer{margin-top:36px;color:var(--muted);font-size:12px}
"""

MAIN_COMPONENTS = ("kubernetes", "kind", "etcd")  # listed first among the versions
GATE_WORD = {"pass": "PASS", "fail": "FAIL", "unknown": "UNKNOWN", "skip": "SKIP"}


def e(x: Any) -> str:
    return escape("" if x is None else str(x), quote=True)


def anchor(nodeid: str) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_-]+", "-", nodeid).strip("-")


def duration(s: float | None) -> str:
    """Human duration: 0.42 s, 12.3 s, 4m 05s, 1h 02m."""
    if s is None:
        return ""
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    return e(v)


def chip(status: str, text: str | None = None) -> str:
    return f"<span class='chip s-{e(status)}'>{e(text or GATE_WORD.get(status, status.upper()))}</span>"


def _bytes(n: int | None) -> str:
    return "" if n is None else f"{n / 2**30:.1f} GiB"


def _failure_reasons(t: dict[str, Any]) -> list[str]:
    """Why a test did not pass: its non-passing verdicts first, else pytest's one-line cause."""
    reasons = [f"{v['check']}: {v['reason']}" for v in t.get("verdicts", []) if v.get("status") != "pass"]
    if not reasons and t.get("headline"):
        reasons.append(t["headline"])
    return reasons


def _banner(doc: dict[str, Any]) -> str:
    s, run = doc["summary"], doc["run"]
    g = s["gate"]
    counts = (f"{s['total']} tests · {s['passed']} passed · {s['failed']} failed · {s['error']} errors · "
              f"{s['skipped']} skipped · {duration(run.get('duration_s'))} · started {e(run.get('started'))}")
    return (f"<header class='banner g-{e(g)}'><div class='badge'>{GATE_WORD.get(g, g.upper())}</div>"
            f"<div><h1>Release gate: {GATE_WORD.get(g, g.upper())}</h1><p>{e(s['reason'])}</p>"
            f"<p class='counts'>{counts}</p></div></header>")


def _why(doc: dict[str, Any]) -> str:
    """The broken-run box: session notes and grouped errors, so a run that never got going says why."""
    notes, errors = doc["run"].get("notes", []), doc["summary"].get("errors", [])
    exitstatus = doc["run"].get("exitstatus", 0)
    if not notes and not errors and exitstatus in (0, 1):
        return ""
    broken = bool(errors) or exitstatus not in (0, 1)
    title = "Why this run is broken" if broken else "Notes"
    items = [f"<li>{e(n)}</li>" for n in notes]
    for g in errors:
        tests = ", ".join(f"<a href='#{anchor(n)}'>{e(n)}</a>" for n in g["tests"])
        more = f" and {g['count'] - len(g['tests'])} more" if g["count"] > len(g["tests"]) else ""
        items.append(f"<li><strong>{g['count']} test(s) errored:</strong> <code>{e(g['headline'])}</code>"
                     f"<br><span class='muted'>{tests}{more}</span></li>")
    if exitstatus not in (0, 1):
        items.append(f"<li>pytest exited {exitstatus}: {e(doc['run'].get('exit_meaning'))}</li>")
    cls = "box alert" if broken else "box"
    return f"<section class='{cls}' id='why'><h2 style='margin-top:0'>{title}</h2><ul class='tight'>{''.join(items)}</ul></section>"


def _allowed_text(a: dict[str, Any], on_test: bool = False) -> str:
    """One thing the run config let through the gate, as HTML: by which entry, why, and (unless shown
    on the test itself) what."""
    head = f"<strong>allowed by {e(a['by'])}</strong> (<code>{e(a['rule'])}</code>)"
    why = f" <span class='muted'>— {e(a['why'])}</span>" if a.get("why") else ""
    if on_test:
        return f"{head}{why}"
    if "test" in a:
        what = (f"<code>{e(a['check'])}</code> UNKNOWN in <a href='#{anchor(a['test'])}'>"
                f"{e(a['test'].split('::', 1)[-1])}</a>: {e(a['reason'])}")
    else:
        what = f"suite <code>{e(a['suite'])}</code>: {e(a['reason'])}"
    return f"{head}{why}: {what}"


def _gate_exceptions(doc: dict[str, Any]) -> str:
    """What the gate did not check and let through anyway (the run config's `gate:` allowances),
    and requested suites that checked nothing: an allowance must be as visible as a failure."""
    s = doc["summary"]
    out = []
    closed = [x for x in s.get("empty_suites", []) if not x.get("allowed")]
    if closed:
        items = "".join(f"<li>requested suite <code>{e(x['suite'])}</code> ran no test: {e(x['detail'])}</li>"
                        for x in closed)
        out.append("<section class='box alert' id='empty-suites'><h2 style='margin-top:0'>Requested suites that "
                   f"checked nothing</h2><ul class='tight'>{items}</ul><p class='muted'>The gate stays closed; "
                   "<code>gate.allow_empty_suites</code> in the run config lets a suite run no test on purpose.</p>"
                   "</section>")
    if s.get("allowed"):
        items = "".join(f"<li>{_allowed_text(a)}</li>" for a in s["allowed"])
        out.append("<section class='box allowed' id='allowed'><h2 style='margin-top:0'>Allowed by the run config "
                   f"({len(s['allowed'])})</h2><p class='muted'>Not judged, and let through by the config's "
                   f"<code>gate:</code> section.</p><ul class='tight'>{items}</ul></section>")
    return "".join(out)


def _artifact_links(t: dict[str, Any]) -> str:
    out = []
    for a in t.get("artifacts", []):
        files = a.get("files") or []
        links = [f"<a href='{e(a['path'])}'>{e(a.get('label') or a['path'])}</a>"]
        links += [f"<a href='{e(f)}'>{e(f.rsplit('/', 1)[-1])}</a>" for f in files[:20]]
        if len(files) > 20:
            links.append(f"<span class='muted'>+{len(files) - 20} more</span>")
        out.append(" · ".join(links))
    return "<br>".join(out)


def _allowed_for(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_test: dict[str, list[dict[str, Any]]] = {}
    for a in doc["summary"].get("allowed", []):
        if "test" in a:
            by_test.setdefault(a["test"], []).append(a)
    return by_test


def _gate_table(tests: list[dict[str, Any]], allowed: dict[str, list[dict[str, Any]]] | None = None) -> str:
    allowed = allowed or {}
    if not tests:
        return "<p class='muted'>No tests ran.</p>"
    rows = []
    order = {"fail": 0, "unknown": 1, "skip": 2, "pass": 3}
    for t in sorted(tests, key=lambda t: (order.get(t["gate"], 1), t.get("suite", ""), t["nodeid"])):
        verdicts = " ".join(chip(v["status"], v["check"]) for v in t.get("verdicts", []))
        if t["gate"] in ("fail", "unknown"):
            reason = "<br>".join(e(r) for r in _failure_reasons(t)) or "<span class='muted'>(no reason recorded)</span>"
            reason += "".join(f"<br>{_allowed_text(a, on_test=True)}" for a in allowed.get(t["nodeid"], []))
        elif t["gate"] == "skip":
            reason = f"<span class='muted'>{e(t.get('headline') or t.get('longrepr', ''))}</span>"
        else:
            reason = ""
        artifacts = _artifact_links(t) if t["gate"] != "pass" else ""
        rows.append(
            f"<tr class='r-{e(t['gate'])}'><td>{e(t.get('suite'))}</td>"
            f"<td><a href='#{anchor(t['nodeid'])}'>{e(t.get('name') or t['nodeid'])}</a></td>"
            f"<td>{chip(t['outcome'], t['outcome'])}{' ' + chip('unknown', 'allowed') if t.get('allowed') else ''}"
            f"</td><td>{verdicts}</td>"
            f"<td class='reason'>{reason}{'<br>' + artifacts if artifacts else ''}</td>"
            f"<td class='num'>{duration(t.get('duration_s'))}</td></tr>")
    return ("<table class='gates' id='gate-table'><thead><tr><th>Suite</th><th>Test</th><th>Outcome</th>"
            "<th>Verdicts</th><th>Why not passed</th><th>Time</th></tr></thead><tbody>" + "".join(rows) +
            "</tbody></table>")


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    return "<dl class='kv'>" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs if v) + "</dl>"


def _run_details(doc: dict[str, Any]) -> str:
    run = doc["run"]
    host, git = run.get("host", {}), run.get("git", {})
    main_first = sorted(run.get("versions", {}).items(),
                        key=lambda kv: (MAIN_COMPONENTS.index(kv[0]) if kv[0] in MAIN_COMPONENTS else 99, kv[0]))
    versions = ", ".join(f"{e(k)} <code>{e(v['value'])}</code> <span class='muted'>({e(v['source'])})</span>"
                         for k, v in main_first)
    commit = git.get("commit")
    git_s = (f"<code>{e(commit)}</code>" + (" <span class='muted'>(with local changes)</span>" if git.get("dirty") else "")
             if commit else "<span class='muted'>no git commit</span>")
    host_s = (f"{e(host.get('hostname'))} · kernel {e(host.get('kernel'))} · {e(host.get('cpu_count'))} CPUs · "
              f"{_bytes(host.get('memory_bytes'))}")
    meta = ", ".join(f"{e(k)}=<code>{e(v)}</code>" for k, v in sorted(run.get("meta", {}).items()))
    cmd = run.get("reproduce", {})
    pairs = [
        ("Reproduce", f"<pre>{e(cmd.get('command'))}</pre>"),
        ("pytest", f"<code>{e(cmd.get('pytest'))}</code>" if cmd.get("pytest") != cmd.get("command") else ""),
        ("Versions", versions),
        ("Git", git_s),
        ("Host", host_s),
        ("Started", f"{e(run.get('started'))} → {e(run.get('finished'))} ({duration(run.get('duration_s'))})"),
        ("pytest exit", f"{e(run.get('exitstatus'))} ({e(run.get('exit_meaning'))})"),
        ("kubedrill", e(run.get("kubedrill_version"))),
        ("Recorded", meta),
        ("Config", e((run.get("config") or {}).get("source") or "")),
    ]
    return f"<section class='box' id='run'><h2 style='margin-top:0'>Run</h2>{_kv(pairs)}</section>"


def _verdicts(verdicts: list[dict[str, Any]]) -> str:
    if not verdicts:
        return ""
    rows = "".join(f"<tr class='r-{e(v['status'])}'><td>{e(v['check'])}</td><td>{chip(v['status'])}</td>"
                   f"<td class='reason'>{e(v['reason'])}</td></tr>" for v in verdicts)
    return ("<h4>Verdicts</h4><table><thead><tr><th>Check</th><th>Status</th><th>Reason</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _figures(figs: list[dict[str, Any]]) -> str:
    if not figs:
        return ""
    rows = "".join(f"<tr><td>{e(f['name'])}</td><td class='num'>{value(f.get('value'))}</td><td>{e(f.get('unit'))}</td>"
                   f"<td class='muted'>{e(f.get('detail'))}</td></tr>" for f in figs)
    return ("<h4>Figures</h4><table><thead><tr><th>Figure</th><th>Value</th><th>Unit</th><th>Detail</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>")


def _plots(verdicts: list[dict[str, Any]]) -> str:
    out = []
    for v in verdicts:
        if not v.get("series"):
            continue
        plots, notes = render_series(v["series"])
        for p in plots:
            out.append(f"<figure>{p.svg}<figcaption class='muted'>from verdict {e(v['check'])}</figcaption></figure>")
        out += [f"<p class='muted'>{e(v['check'])}: {e(n)}</p>" for n in notes]
    return ("<h4>Plots</h4>" + "".join(out)) if out else ""


def _test_card(t: dict[str, Any], allowed: list[dict[str, Any]]) -> str:
    parts = [f"<article class='test t-{e(t['gate'])}' id='{anchor(t['nodeid'])}'>",
             f"<h3>{e(t.get('name') or t['nodeid'])} {chip(t['gate'])} "
             f"<span class='muted' style='font-weight:normal;font-size:12px'>{e(t['nodeid'])} · "
             f"{duration(t.get('duration_s'))}</span></h3>"]
    if t["gate"] != "pass" and _failure_reasons(t):
        parts.append("<ul class='tight'>" + "".join(f"<li>{e(r)}</li>" for r in _failure_reasons(t))
                     + "".join(f"<li>{_allowed_text(a, on_test=True)}</li>" for a in allowed) + "</ul>")
    parts += [_verdicts(t.get("verdicts", [])), _figures(t.get("figures", [])), _plots(t.get("verdicts", []))]
    if t.get("artifacts"):
        parts.append(f"<h4>Artifacts</h4><p>{_artifact_links(t)}</p>")
    if t.get("longrepr") and t["gate"] != "pass":
        parts.append(f"<details><summary>pytest output</summary><pre>{e(t['longrepr'])}</pre></details>")
    parts.append("</article>")
    return "".join(parts)


def _suites(tests: list[dict[str, Any]], allowed: dict[str, list[dict[str, Any]]]) -> str:
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for t in tests:
        by_suite.setdefault(t.get("suite") or "(no suite)", []).append(t)
    out = []
    for suite in sorted(by_suite):
        ts = by_suite[suite]
        bad = sum(1 for t in ts if t["gate"] == "fail")
        unseen = sum(1 for t in ts if t["gate"] == "unknown" and not t.get("allowed"))
        status = ("fail" if bad else "unknown" if unseen else
                  "pass" if any(t["gate"] == "pass" for t in ts) else "unknown")
        out.append(f"<section class='suite' id='suite-{e(re.sub(r'[^A-Za-z0-9_-]', '-', suite))}'>"
                   f"<h2>{e(suite)} {chip(status)} <span class='muted' style='font-size:13px;font-weight:normal'>"
                   f"{len(ts)} tests, {sum(1 for t in ts if t['gate'] in ('fail', 'unknown'))} not passed</span></h2>")
        out += [_test_card(t, allowed.get(t["nodeid"], [])) for t in ts]
        out.append("</section>")
    return "".join(out)


def _soak(doc: dict[str, Any]) -> str:
    """`kubedrill soak`'s table: each test's passes, failures, UNKNOWNs and skips over every run,
    its duration spread and the reason of every run that did not pass."""
    soak = doc.get("soak")
    if not soak:
        return ""
    rows = "".join(
        f"<tr><td><a href='#{anchor(r['nodeid'])}'>{e(r['nodeid'].split('::', 1)[-1])}</a></td><td>{r['runs']}</td>"
        f"<td>{r['passed']}</td><td>{r['failed']}</td><td>{r['unknown']}</td><td>{r['skipped']}</td>"
        f"<td>{duration(r['min_s'])}</td><td>{duration(r['median_s'])}</td><td>{duration(r['max_s'])}</td></tr>"
        for r in soak["tests"])
    reasons = [f"{r['nodeid'].split('::', 1)[-1]} {x}" for r in soak["tests"] for x in r["reasons"]]
    reasons += list(soak.get("broken_runs", []))
    t = soak["totals"]
    verdict = chip("pass" if soak["clean"] else "fail", "clean" if soak["clean"] else "not clean")
    return (f"<section id='soak'><h2>Soak: {e(soak.get('suite', ''))}, {soak['runs']} runs {verdict}</h2>"
            f"<p>{t['passed']} passed, {t['failed']} failed, {t['unknown']} unknown, {t['skipped']} skipped. "
            f"{e(soak.get('machine_before', ''))}</p>"
            "<table><tr><th>test</th><th>runs</th><th>pass</th><th>fail</th><th>unknown</th><th>skipped</th>"
            f"<th>min</th><th>median</th><th>max</th></tr>{rows}</table>"
            + (f"<ul>{''.join(f'<li>{e(x)}</li>' for x in reasons)}</ul>" if reasons else "") + "</section>")


def render(doc: dict[str, Any]) -> str:
    """The whole report as one HTML string."""
    s = doc["summary"]
    allowed = _allowed_for(doc)
    title = f"kubedrill: {GATE_WORD.get(s['gate'], s['gate'])} — {s['reason']}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body><main>"
        f"{_banner(doc)}{_why(doc)}{_gate_exceptions(doc)}"
        f"<section id='gates'><h2>Gate table</h2>{_gate_table(doc['tests'], allowed)}</section>"
        f"{_soak(doc)}{_run_details(doc)}{_suites(doc['tests'], allowed)}"
        f"<footer>results.json schema {e(doc.get('schema_version'))} · kubedrill {e(doc['run'].get('kubedrill_version'))}"
        " · this file is self-contained: no scripts, no external assets</footer>"
        "</main></body></html>\n"
    )
