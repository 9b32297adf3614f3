"""The etcd checkers on hand-made records: each one passes a good record and rejects a bad one."""

from __future__ import annotations

from typing import Any

import pytest

from kubedrill.check.etcd_checks import (
    check_answers,
    check_election,
    check_hashes_equal,
    check_lost_writes,
    check_min_rate,
    check_restored_state,
    check_stale_reads,
    check_unavailability,
    unavailability_windows,
)
from kubedrill.check.verdict import Status
from kubedrill.record import Event, Operation


def w(s: float, e: float, outcome: str = "ok", key: str = "k", value: str = "v", rev: int = 0, c: str = "1") -> Operation:
    return Operation("put", s, e, outcome, c, key, value, {"revision": rev} if outcome == "ok" else None, "")  # type: ignore[arg-type]


def rb(key: str, rev: int, value: Any, mod: int) -> Operation:
    return Operation("readback", 100, 101, "ok", "rb", key, {"revision": rev}, {"value": value, "mod_revision": mod})


# -- lost writes --------------------------------------------------------------------------------

def test_lost_writes_pass_when_every_ack_is_read_back() -> None:
    h = [w(0, 1, value="a", rev=5), w(1, 2, value="b", rev=6), rb("k", 5, "a", 5), rb("k", 6, "b", 6)]
    assert check_lost_writes(h).status is Status.PASS


def test_lost_write_is_rejected() -> None:
    # Acknowledged at revision 6, but at revision 6 the key still holds the older write.
    h = [w(0, 1, value="a", rev=5), w(1, 2, value="b", rev=6), rb("k", 5, "a", 5), rb("k", 6, "a", 5)]
    v = check_lost_writes(h)
    assert v.status is Status.FAIL and "'k'@6" in v.reason and "'b'" in v.reason


def test_lost_writes_within_the_allowance_pass_and_are_named() -> None:
    h = [w(0, 1, value="a", rev=5), w(1, 2, value="b", rev=6), rb("k", 5, "a", 5), rb("k", 6, "a", 5)]
    v = check_lost_writes(h, max_lost=1)
    assert v.status is Status.PASS and "within the allowed 1: 'k'@6" in v.reason
    assert "(allowed 0)" in check_lost_writes(h).reason


def test_write_vanished_entirely_is_rejected() -> None:
    v = check_lost_writes([w(0, 1, value="a", rev=5), rb("k", 5, None, 0)])
    assert v.status is Status.FAIL


def test_two_acks_at_one_revision_are_rejected() -> None:
    h = [w(0, 1, value="a", rev=5), w(0, 1, value="b", rev=5, c="2"), rb("k", 5, "a", 5)]
    assert check_lost_writes(h).status is Status.FAIL


def test_successful_cas_counts_as_a_write() -> None:
    cas = Operation("cas", 0, 1, "ok", "1", "k", {"expected": "a", "new": "c"}, {"succeeded": True, "revision": 9})
    assert check_lost_writes([cas, rb("k", 9, "a", 5)]).status is Status.FAIL
    assert check_lost_writes([cas, rb("k", 9, "c", 9)]).status is Status.PASS


def test_unverified_or_absent_writes_are_unknown() -> None:
    assert check_lost_writes([w(0, 1, rev=5)]).status is Status.UNKNOWN
    assert check_lost_writes([w(0, 1, "unknown"), w(0, 1, "fail")]).status is Status.UNKNOWN


# -- unavailability -------------------------------------------------------------------------------

def test_unavailability_window_from_first_failure_to_next_success() -> None:
    h = [w(0, 1), w(2, 3, "fail"), w(3, 4.5, "unknown"), w(5, 6), w(7, 8)]
    outs = unavailability_windows(h)
    assert len(outs) == 1 and outs[0].recovered
    assert outs[0].window.start == 2 and outs[0].window.end == 6


def test_success_invoked_before_the_outage_does_not_close_it() -> None:
    h = [w(0, 10), w(1, 2, "fail"), w(3, 4)]
    outs = unavailability_windows(h)
    assert [(o.window.start, o.window.end) for o in outs] == [(1, 4)]


def test_outage_longer_than_allowed_fails_and_never_recovering_fails() -> None:
    h = [w(0, 1), w(2, 3, "fail"), w(9, 10)]
    assert check_unavailability(h, max_window_s=5).status is Status.FAIL
    assert check_unavailability(h, max_window_s=9).status is Status.PASS
    never = [w(0, 1), w(2, 3, "fail"), w(4, 5, "unknown")]
    v = check_unavailability(never)
    assert v.status is Status.FAIL and "never recovered" in v.reason
    assert check_unavailability([]).status is Status.UNKNOWN


# -- election ------------------------------------------------------------------------------------

def test_election_time_measured() -> None:
    ev = [Event(10.0, "disruption-injected"), Event(11.25, "leader-elected", data={"old": "m0", "new": "m2"})]
    v = check_election(ev, max_s=5)
    assert v.status is Status.PASS and v.figures[0].value == pytest.approx(1.25)


def test_no_new_leader_or_same_leader_or_too_slow_fails() -> None:
    assert check_election([Event(10.0, "disruption-injected")]).status is Status.FAIL
    same = [Event(10.0, "disruption-injected"), Event(11.0, "leader-elected", data={"old": "m0", "new": "m0"})]
    assert check_election(same).status is Status.FAIL
    slow = [Event(10.0, "disruption-injected"), Event(30.0, "leader-elected", data={"old": "m0", "new": "m1"})]
    assert check_election(slow, max_s=5).status is Status.FAIL
    # A leader elected *before* the fault is not evidence.
    early = [Event(9.0, "leader-elected", data={"old": "m0", "new": "m1"}), Event(10.0, "disruption-injected")]
    assert check_election(early).status is Status.FAIL
    assert check_election([]).status is Status.UNKNOWN


# -- load rate -------------------------------------------------------------------------------------

def test_too_little_load_before_the_fault_is_inconclusive() -> None:
    busy = [w(t / 10, t / 10 + 0.05) for t in range(100)]
    assert check_min_rate(busy, before=10, min_rate=5, lookback_s=5).status is Status.PASS
    idle = [w(9.5, 9.6)]
    assert check_min_rate(idle, before=10, min_rate=5, lookback_s=5).status is Status.UNKNOWN


# -- quorum probes ---------------------------------------------------------------------------------

def test_writes_expected_available() -> None:
    assert check_answers([w(0, 1, "fail"), w(1, 2)], expect_ok=True, timeout_s=2).status is Status.PASS
    assert check_answers([w(0, 1, "fail"), w(1, 3, "unknown")], expect_ok=True, timeout_s=2).status is Status.FAIL


def test_writes_expected_refused() -> None:
    assert check_answers([w(0, 0.1, "fail"), w(1, 3, "unknown")], expect_ok=False, timeout_s=2).status is Status.PASS
    v = check_answers([w(0, 0.1, "fail"), w(1, 2)], expect_ok=False, timeout_s=2)
    assert v.status is Status.FAIL and "succeeded" in v.reason
    hung = check_answers([w(0, 9, "unknown")], expect_ok=False, timeout_s=2)
    assert hung.status is Status.FAIL and "hung" in hung.reason
    assert check_answers([], expect_ok=False, timeout_s=2).status is Status.UNKNOWN


# -- minority reads --------------------------------------------------------------------------------

def sget(rev: int, outcome: str = "ok") -> Operation:
    return Operation("sget", 0, 1, outcome, "m", "k", None, {"value": "x", "revision": rev} if outcome == "ok" else None)  # type: ignore[arg-type]


def test_minority_reads_must_answer_and_be_stale() -> None:
    maj = [w(0, 1, rev=50), w(1, 2, rev=51)]
    assert check_stale_reads([sget(40), sget(40)], maj).status is Status.PASS
    assert check_stale_reads([sget(40), sget(51)], maj).status is Status.FAIL  # minority saw the majority's write
    assert check_stale_reads([sget(0, "unknown")], maj).status is Status.FAIL  # minority did not answer
    assert check_stale_reads([sget(40)], []).status is Status.UNKNOWN


# -- restored state ----------------------------------------------------------------------------------

def test_restored_state_equal_passes_and_each_difference_fails() -> None:
    exp = {b"a": (b"1", 2, 2, 1), b"b": (b"2", 3, 4, 2)}
    assert check_restored_state(exp, dict(exp), expected_revision=4, actual_revision=4).status is Status.PASS
    cases = {
        "missing": ({b"a": exp[b"a"]}, 4),
        "unexpected": ({**exp, b"c": (b"3", 5, 5, 1)}, 4),
        "different": ({**exp, b"b": (b"X", 3, 4, 2)}, 4),
        "revision": ({**exp, b"b": (b"2", 3, 5, 2)}, 4),
        "store revision": (dict(exp), 5),
    }
    for name, (actual, rev) in cases.items():
        v = check_restored_state(exp, actual, expected_revision=4, actual_revision=rev)
        assert v.status is Status.FAIL, name
    leak = check_restored_state(exp, {**exp, b"post": (b"p", 9, 9, 1)}, expected_revision=4, actual_revision=4,
                                must_be_absent=[b"post"])
    assert leak.status is Status.FAIL and "post-snapshot" in leak.reason
    assert check_restored_state({}, {}, expected_revision=1, actual_revision=1).status is Status.UNKNOWN


def test_hashes_equal() -> None:
    assert check_hashes_equal({"m0": 1, "m1": 1, "m2": 1}, 10).status is Status.PASS
    assert check_hashes_equal({"m0": 1, "m1": 2}, 10).status is Status.FAIL
    assert check_hashes_equal({"m0": 1}, 10).status is Status.UNKNOWN


def test_load_that_just_started_is_inconclusive() -> None:
    just = [w(9.8, 9.85), w(9.85, 9.9)]
    v = check_min_rate(just, before=10, min_rate=5, lookback_s=5)
    assert v.status is Status.UNKNOWN and "too short" in v.reason
