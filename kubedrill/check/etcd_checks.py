"""Pure checks over etcd records: lost writes, unavailability windows, election time, quorum
behaviour, stale minority reads, workload rate and restored state.

Every function takes recorded operations/events (or plain data) and returns a Verdict; none
does I/O or reads a clock. Operation kinds follow kubedrill.check.linearizability's contract,
plus:
  sget      serializable read     result={"value": str|None, "revision": int}
  readback  read of key at revision R after the run
            value={"revision": R}, result={"value": str|None, "mod_revision": int}
Writes are "put" and "cas" (a cas counts as a write only when it succeeded).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record import Event, Operation, Window

WRITE_KINDS = ("put", "cas")


def acknowledged_writes(history: Iterable[Operation]) -> list[tuple[Operation, str, int]]:
    """(op, value written, revision) for every write etcd acknowledged as applied."""
    out = []
    for op in history:
        if op.outcome != "ok" or op.kind not in WRITE_KINDS or not isinstance(op.result, dict):
            continue
        if op.kind == "put":
            out.append((op, op.value, int(op.result["revision"])))
        elif op.result.get("succeeded"):
            out.append((op, op.value["new"], int(op.result["revision"])))
    return out


def check_lost_writes(history: Sequence[Operation], max_lost: int = 0) -> Verdict:
    """Every acknowledged write must be found at its revision when read back after the run.

    etcd keeps every revision until compaction, so `get key --rev R` must return exactly the
    acknowledged value with mod_revision R. Two acknowledged writes claiming the same key and
    revision with different values are also a loss (one of them was not really applied).
    FAIL when more than `max_lost` are lost (the run config's slo.max_lost_writes, 0 by default).
    """
    name = "lost-writes"
    acked = acknowledged_writes(history)
    if not acked:
        return Verdict.unknown(name, "no acknowledged writes in the record: nothing to verify")
    readback: dict[tuple[str, int], Operation] = {}
    for op in history:
        if op.kind == "readback" and op.outcome == "ok":
            readback[(str(op.key), int(op.value["revision"]))] = op
    lost: list[str] = []
    unverified = 0
    claims: dict[tuple[str, int], str] = {}
    for op, value, rev in acked:
        k = (str(op.key), rev)
        if k in claims and claims[k] != value:
            lost.append(f"{op.key!r}@{rev}: acknowledged twice, as {claims[k]!r} and {value!r}")
        claims[k] = value
        rb = readback.get(k)
        if rb is None:
            unverified += 1
            continue
        got, mod = rb.result.get("value"), int(rb.result.get("mod_revision") or 0)
        if got != value or mod != rev:
            lost.append(f"{op.key!r}@{rev}: acknowledged {value!r} to client {op.client}, read back {got!r} (mod_revision {mod})")
    figures = [Figure("acknowledged_writes", len(acked), "writes"), Figure("lost_writes", len(lost), "writes"),
               Figure("unverified_writes", unverified, "writes")]
    listed = "; ".join(lost[:5]) + (f" (+{len(lost) - 5} more)" if len(lost) > 5 else "")
    if len(lost) > max_lost:
        return Verdict.fail(name, f"{len(lost)} of {len(acked)} acknowledged writes lost (allowed {max_lost}): {listed}",
                            figures)
    if unverified:
        return Verdict.unknown(name, f"{unverified} of {len(acked)} acknowledged writes were not read back; cannot tell if they survived", figures)
    if lost:
        return Verdict.ok(name, f"{len(lost)} of {len(acked)} acknowledged writes lost, within the allowed {max_lost}: "
                                f"{listed}", figures)
    return Verdict.ok(name, f"all {len(acked)} acknowledged writes read back at their revisions", figures)


@dataclass(frozen=True)
class Outage:
    window: Window
    recovered: bool


def unavailability_windows(history: Iterable[Operation], kinds: Sequence[str] = WRITE_KINDS) -> list[Outage]:
    """Intervals from the invocation of the first write that did not succeed to the completion of
    the next write, invoked after it, that did. Overlapping intervals are merged. A window still
    open at the end of the record ends at the last completion and has recovered=False."""
    writes = sorted((o for o in history if o.kind in kinds), key=lambda o: (o.start, o.end))
    raw: list[Outage] = []
    opened: float | None = None
    last_end = max((o.end for o in writes), default=0.0)
    for op in writes:
        if op.outcome != "ok":
            if opened is None:
                opened = op.start
        elif opened is not None and op.start >= opened:
            raw.append(Outage(Window(opened, op.end), True))
            opened = None
    if opened is not None:
        raw.append(Outage(Window(opened, max(last_end, opened)), False))
    merged: list[Outage] = []
    for o in sorted(raw, key=lambda o: o.window.start):
        if merged and o.window.start <= merged[-1].window.end:
            prev = merged[-1]
            merged[-1] = Outage(Window(prev.window.start, max(prev.window.end, o.window.end)), prev.recovered and o.recovered)
        else:
            merged.append(o)
    return merged


def check_unavailability(
    history: Sequence[Operation], max_window_s: float | None = None, must_recover: bool = True, label: str = "write"
) -> Verdict:
    """Measure write-unavailability windows; FAIL if one never closed (when must_recover) or
    one is longer than max_window_s."""
    name = f"{label}-unavailability"
    outs = unavailability_windows(history)
    longest = max((o.window.duration for o in outs), default=0.0)
    total = sum(o.window.duration for o in outs)
    figures = [Figure(f"{label}_unavailable_max", round(longest, 3), "s"),
               Figure(f"{label}_unavailable_total", round(total, 3), "s"),
               Figure(f"{label}_unavailable_windows", len(outs), "windows")]
    series = {"windows": [[o.window.start, o.window.end, o.recovered] for o in outs]}
    if not any(o.kind in WRITE_KINDS for o in history):
        return Verdict.unknown(name, "no writes recorded", figures)
    open_ = [o for o in outs if not o.recovered]
    if must_recover and open_:
        return Verdict.fail(name, f"writes never recovered: unavailable from t={open_[0].window.start:.3f} to the end of the record", figures, **series)
    if max_window_s is not None and longest > max_window_s:
        return Verdict.fail(name, f"longest write outage {longest:.2f}s exceeds the allowed {max_window_s:.2f}s", figures, **series)
    return Verdict.ok(name, f"{len(outs)} outage window(s), longest {longest:.2f}s", figures, **series)


def check_election(events: Sequence[Event], max_s: float | None = None, fault_kind: str = "disruption-injected",
                   elected_kind: str = "leader-elected") -> Verdict:
    """Time from the fault's injection to the first observation of a new leader.

    The observation comes from status polling (every ~50 ms), so the figure is an upper bound.
    FAIL if no new leader was observed after the fault, or it took longer than max_s.
    """
    name = "leader-election"
    starts = [e for e in events if e.kind == fault_kind]
    if not starts:
        return Verdict.unknown(name, f"no {fault_kind!r} event recorded: was the fault injected?")
    t0 = starts[0].at
    elected = [e for e in events if e.kind == elected_kind and e.at >= t0]
    if not elected:
        return Verdict.fail(name, f"no new leader observed after the fault at t={t0:.3f}")
    e = elected[0]
    dt = e.at - t0
    old, new = e.data.get("old"), e.data.get("new")
    figures = [Figure("election_time", round(dt, 3), "s", f"{old} -> {new}")]
    if old is not None and old == new:
        return Verdict.fail(name, f"leader did not change (still {old})", figures)
    if max_s is not None and dt > max_s:
        return Verdict.fail(name, f"new leader {new} after {dt:.2f}s, more than the allowed {max_s:.2f}s", figures)
    return Verdict.ok(name, f"leader {old} -> {new} in {dt:.2f}s", figures)


def check_min_rate(history: Sequence[Operation], before: float, min_rate: float, lookback_s: float) -> Verdict:
    """Enough completed operations in the lookback window before `before`, else the run proves
    nothing (etcd robustness: "Requiring minimal qps before failpoint injection").

    The window starts no earlier than the first recorded invocation, so a workload that began
    just before the fault is measured over the time it actually ran.
    """
    name = "load-before-fault"
    first = min((o.start for o in history), default=before)
    lo = max(before - lookback_s, first)
    span = before - lo
    n = sum(1 for o in history if o.outcome == "ok" and lo <= o.end <= before)
    rate = n / span if span > 0 else 0.0
    figures = [Figure("rate_before_fault", round(rate, 1), "ops/s")]
    if span < min(0.5, lookback_s):
        return Verdict.unknown(name, f"the load ran only {span:.2f}s before the fault: too short to measure", figures)
    if rate < min_rate:
        return Verdict.unknown(name, f"only {rate:.1f} ok ops/s in the {span:.1f}s before the fault, "
                                     f"need >= {min_rate:.1f} for the result to mean anything", figures)
    return Verdict.ok(name, f"{rate:.1f} ok ops/s over the {span:.1f}s before the fault", figures)


def check_answers(
    ops: Sequence[Operation], *, expect_ok: bool, timeout_s: float, slack_s: float = 0.5, what: str = "writes"
) -> Verdict:
    """Quorum expectations over probe operations.

    expect_ok=True : at least one probe succeeded (the side is available).
    expect_ok=False: none succeeded, and every probe came back (fail or timeout) within
                     timeout_s + slack_s, i.e. the client was not left hanging.
    """
    name = f"{what}-{'available' if expect_ok else 'refused'}"
    if not ops:
        return Verdict.unknown(name, f"no {what} probes recorded")
    c = Counter(o.outcome for o in ops)
    slowest = max(o.latency for o in ops)
    figures = [Figure(f"{what}_probes", len(ops), "ops"), Figure(f"{what}_probe_slowest", round(slowest, 3), "s")]
    summary = f"{len(ops)} probes: {c['ok']} ok, {c['fail']} fail, {c['unknown']} unknown"
    if expect_ok:
        if c["ok"] == 0:
            details = "; ".join(sorted({o.detail[:120] for o in ops if o.detail}))[:400]
            return Verdict.fail(name, f"expected {what} to succeed, none did ({summary}): {details}", figures)
        return Verdict.ok(name, f"{what} succeed ({summary})", figures)
    if c["ok"]:
        bad = next(o for o in ops if o.outcome == "ok")
        return Verdict.fail(name, f"expected {what} to be refused, {c['ok']} succeeded (e.g. {bad.kind} {bad.key} via client {bad.client}); {summary}", figures)
    if slowest > timeout_s + slack_s:
        return Verdict.fail(name, f"{what} were refused but one took {slowest:.2f}s, longer than the client timeout {timeout_s:.2f}s + {slack_s:.2f}s: it hung", figures)
    return Verdict.ok(name, f"{what} refused within {slowest:.2f}s ({summary})", figures)


def check_stale_reads(minority_reads: Sequence[Operation], majority_writes: Sequence[Operation]) -> Verdict:
    """Serializable reads on a partitioned minority answer, but from a stale revision: older than
    the writes the majority acknowledged meanwhile. Proves the minority serves reads locally and
    cannot see (or accept) new writes."""
    name = "minority-stale-reads"
    reads = [o for o in minority_reads if o.outcome == "ok"]
    revs = [int(w.result["revision"]) for w in majority_writes if w.outcome == "ok" and isinstance(w.result, dict)]
    if not minority_reads:
        return Verdict.unknown(name, "no minority reads recorded")
    if not reads:
        return Verdict.fail(name, f"none of {len(minority_reads)} serializable reads on the minority answered; they should be served locally")
    if not revs:
        return Verdict.unknown(name, "the majority acknowledged no writes during the partition; staleness cannot be shown")
    newest = max(revs)
    fresh = [o for o in reads if int(o.result["revision"]) >= newest]
    figures = [Figure("minority_reads_answered", len(reads), "ops"), Figure("majority_revision_lead", newest - max(int(o.result["revision"]) for o in reads), "revisions")]
    if fresh:
        return Verdict.fail(name, f"{len(fresh)} minority reads saw revision >= {newest}, the majority's newest: the minority was not cut off", figures)
    return Verdict.ok(name, f"{len(reads)} minority reads answered at revisions below the majority's {newest}", figures)


KV = tuple[bytes, int, int, int]  # value, create_revision, mod_revision, version


def check_restored_state(
    expected: Mapping[bytes, KV], actual: Mapping[bytes, KV], *, expected_revision: int, actual_revision: int,
    must_be_absent: Iterable[bytes] = (), label: str = "restore",
) -> Verdict:
    """The restored keyspace equals the snapshot-time keyspace: same keys, values, create/mod
    revisions and versions, the same store revision, and none of the post-snapshot writes."""
    name = f"{label}-state"
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    differ = [k for k in expected if k in actual and expected[k] != actual[k]]
    leaked = [k for k in must_be_absent if k in actual and k not in expected]
    figures = [Figure(f"{label}_keys_verified", len(expected), "keys")]
    problems: list[str] = []
    if expected_revision != actual_revision:
        problems.append(f"store revision {actual_revision}, expected {expected_revision}")
    for title, keys in (("missing", missing), ("unexpected", extra), ("different", differ), ("post-snapshot keys present", leaked)):
        if keys:
            sample = ", ".join(repr(k[:60]) for k in keys[:3])
            problems.append(f"{len(keys)} {title} (e.g. {sample})")
    if differ:
        k = differ[0]
        e, a = expected[k], actual[k]
        problems.append(f"first difference {k!r}: expected (len {len(e[0])}, create {e[1]}, mod {e[2]}, ver {e[3]}), "
                        f"got (len {len(a[0])}, create {a[1]}, mod {a[2]}, ver {a[3]})")
    if problems:
        return Verdict.fail(name, "; ".join(problems), figures)
    if not expected:
        return Verdict.unknown(name, "the expected state is empty: nothing was verified", figures)
    return Verdict.ok(name, f"all {len(expected)} keys equal in value and revisions at revision {actual_revision}", figures)


def check_hashes_equal(hashes: Mapping[str, Any], revision: int, name: str = "members-converged") -> Verdict:
    """`endpoint hashkv` at one revision is equal on every member: the recovered one caught up
    (or, across clusters, the restored history equals the source's up to that revision)."""
    if len(hashes) < 2:
        return Verdict.unknown(name, f"need hashes of at least 2 members, got {dict(hashes)}")
    if len(set(hashes.values())) != 1:
        return Verdict.fail(name, f"hashkv at revision {revision} differs between members: {dict(hashes)}")
    return Verdict.ok(name, f"{len(hashes)} members have hashkv {next(iter(hashes.values()))} at revision {revision}")
