"""The per-key register linearizability checker on hand-made histories.

Each rejecting case is a distinct way a store can break linearizability; each accepting case is
a legal behaviour the checker must not flag (overlap, indeterminate writes, failed CAS).
"""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

import pytest

from kubedrill.check.linearizability import check_linearizable, synthetic_history
from kubedrill.check.verdict import Status
from kubedrill.record import Operation

_n = itertools.count()


def put(s: float, e: float, v: str, outcome: str = "ok", key: str = "k", c: str = "a") -> Operation:
    return Operation("put", s, e, outcome, c, key, v, {"revision": next(_n)} if outcome == "ok" else None)  # type: ignore[arg-type]


def get(s: float, e: float, v: Any, key: str = "k", c: str = "b", outcome: str = "ok") -> Operation:
    return Operation("get", s, e, outcome, c, key, None, {"value": v, "revision": 0} if outcome == "ok" else None)  # type: ignore[arg-type]


def cas(s: float, e: float, exp: str, new: str, ok: bool | None, current: Any = None, key: str = "k", c: str = "c") -> Operation:
    if ok is None:
        return Operation("cas", s, e, "unknown", c, key, {"expected": exp, "new": new}, None)
    return Operation("cas", s, e, "ok", c, key, {"expected": exp, "new": new},
                     {"succeeded": ok, "current": None if ok else current, "revision": 0})


def verdict(*ops: Operation, **kw: Any) -> Status:
    return check_linearizable(list(ops), **kw).status


# -- accepted ---------------------------------------------------------------------------------

def test_sequential_history_passes() -> None:
    assert verdict(put(0, 1, "x"), get(2, 3, "x"), put(4, 5, "y"), get(6, 7, "y")) is Status.PASS


def test_read_of_absent_key_is_none() -> None:
    assert verdict(get(0, 1, None), put(2, 3, "x"), get(4, 5, "x")) is Status.PASS


def test_concurrent_read_may_see_old_or_new() -> None:
    for seen in ("x", "y"):
        assert verdict(put(0, 1, "x"), put(2, 6, "y"), get(3, 4, seen)) is Status.PASS


def test_unknown_write_may_apply_later() -> None:
    # The write timed out at t=3; a read at t=10 sees it: it took effect after its invocation.
    assert verdict(put(0, 1, "x"), put(2, 3, "y", outcome="unknown"), get(10, 11, "y")) is Status.PASS


def test_unknown_write_may_never_apply() -> None:
    assert verdict(put(0, 1, "x"), put(2, 3, "y", outcome="unknown"), get(10, 11, "x")) is Status.PASS


def test_cas_chain_passes() -> None:
    assert verdict(put(0, 1, "a"), cas(2, 3, "a", "b", True), cas(4, 5, "a", "c", False, current="b"),
                   get(6, 7, "b")) is Status.PASS


def test_unknown_cas_may_or_may_not_apply() -> None:
    for seen in ("a", "b"):
        assert verdict(put(0, 1, "a"), cas(2, 3, "a", "b", None), get(5, 6, seen)) is Status.PASS


def test_keys_are_independent() -> None:
    assert verdict(put(0, 1, "x", key="k1"), put(0, 1, "y", key="k2"), get(2, 3, "x", key="k1"),
                   get(2, 3, "y", key="k2")) is Status.PASS


def test_failed_and_incomplete_reads_carry_no_information() -> None:
    assert verdict(put(0, 1, "x"), get(2, 3, None, outcome="fail"), get(2, 3, None, outcome="unknown"),
                   get(4, 5, "x")) is Status.PASS


def test_random_linearizable_histories_pass() -> None:
    for seed in range(5):
        v = check_linearizable(synthetic_history(1500, 20, clients=6, seed=seed))
        assert v.status is Status.PASS, (seed, v.reason)


# -- rejected ---------------------------------------------------------------------------------

def test_stale_read_is_rejected() -> None:
    v = check_linearizable([put(0, 1, "x"), put(2, 3, "y"), get(4, 5, "x")])
    assert v.status is Status.FAIL
    assert "'k'" in v.reason and "get() -> 'x'" in v.reason


def test_read_of_value_never_written_is_rejected() -> None:
    assert verdict(put(0, 1, "x"), get(2, 3, "ghost")) is Status.FAIL


def test_lost_acknowledged_write_is_rejected() -> None:
    # The write was acknowledged at t=1, yet a later read sees the key absent.
    assert verdict(put(0, 1, "x"), get(2, 3, None)) is Status.FAIL


def test_failed_write_must_not_be_visible() -> None:
    # "fail" means definitely not applied; seeing its value is a violation.
    assert verdict(put(0, 1, "x"), put(2, 3, "y", outcome="fail"), get(4, 5, "y")) is Status.FAIL


def test_non_monotonic_reads_are_rejected() -> None:
    # Two sequential reads during one concurrent write: new then old is impossible.
    assert verdict(put(0, 1, "x"), put(2, 20, "y"), get(3, 4, "y"), get(5, 6, "x")) is Status.FAIL


def test_cas_succeeding_on_wrong_value_is_rejected() -> None:
    assert verdict(put(0, 1, "a"), cas(2, 3, "z", "b", True)) is Status.FAIL


def test_cas_failing_on_matching_value_is_rejected() -> None:
    assert verdict(put(0, 1, "a"), cas(2, 3, "a", "b", False, current="a")) is Status.FAIL


def test_failed_cas_reporting_wrong_current_is_rejected() -> None:
    assert verdict(put(0, 1, "a"), cas(2, 3, "q", "b", False, current="zzz")) is Status.FAIL


def test_one_bad_key_fails_the_whole_history_and_is_named() -> None:
    v = check_linearizable([put(0, 1, "x", key="good"), get(2, 3, "x", key="good"),
                            put(0, 1, "x", key="bad"), get(2, 3, "nope", key="bad")])
    assert v.status is Status.FAIL and "'bad'" in v.reason and "'good'" not in v.reason


def test_mutated_random_histories_are_rejected() -> None:
    rng = random.Random(7)
    for seed in range(5):
        hist = synthetic_history(600, 10, clients=4, seed=seed, unknown_rate=0.0)
        reads = [i for i, o in enumerate(hist) if o.kind == "get"]
        i = rng.choice(reads)
        o = hist[i]
        hist[i] = Operation(o.kind, o.start, o.end, o.outcome, o.client, o.key, o.value, {"value": "corrupt", "revision": 0})
        assert check_linearizable(hist).status is Status.FAIL, seed


# -- cannot decide ------------------------------------------------------------------------------

def test_exhausted_budget_is_unknown_not_pass() -> None:
    ticks = itertools.count()
    v = check_linearizable(synthetic_history(400, 1, clients=8, seed=1), time_budget_s=5, clock=lambda: next(ticks) * 10.0)
    assert v.status is Status.UNKNOWN and "budget" in v.reason


def test_empty_history_is_unknown() -> None:
    assert verdict() is Status.UNKNOWN
    assert verdict(Operation("sget", 0, 1, "ok", "a", "k", None, {"value": "x", "revision": 1})) is Status.UNKNOWN


def test_figures_are_reported() -> None:
    v = check_linearizable([put(0, 1, "x"), get(2, 3, "x")])
    names = {f.name for f in v.figures}
    assert {"linearizability_ops_checked", "linearizability_checker_time"} <= names


@pytest.mark.slow
def test_10k_ops_100_keys_decided_within_10s() -> None:
    hist = synthetic_history(10_000, 100, clients=16, seed=42)
    t0 = time.monotonic()
    v = check_linearizable(hist, time_budget_s=10)
    assert v.status is Status.PASS, v.reason
    assert time.monotonic() - t0 <= 10


# -- agreement with brute force -------------------------------------------------------------------

def _brute_force(ops: list[Operation]) -> bool:
    """Try every subset of unknown writes and every real-time-respecting order (tiny histories only)."""
    from kubedrill.check.linearizability import step, translate

    reg = translate(ops).get("k", [])  # no pruning here: brute force checks the pruning too
    unknown = [o for o in reg if o.ret == float("inf")]
    known = [o for o in reg if o.ret != float("inf")]
    for mask in range(1 << len(unknown)):
        chosen = known + [u for i, u in enumerate(unknown) if mask >> i & 1]
        for perm in itertools.permutations(chosen):
            # real time: if a returned before b was invoked, a must come first
            if any(perm[j].ret < perm[i].call for i in range(len(perm)) for j in range(i + 1, len(perm))):
                continue
            state: Any = None
            good = True
            for o in perm:
                good, state = step(state, o)
                if not good:
                    break
            if good:
                return True
    return False


def test_agrees_with_brute_force_on_small_random_histories() -> None:
    rng = random.Random(3)
    values = ["a", "b", "c"]
    disagreements = []
    seen = {True: 0, False: 0}
    for trial in range(400):
        ops = []
        for i in range(rng.randint(2, 6)):
            s = rng.uniform(0, 10)
            e = s + rng.uniform(0.1, 4)
            kind = rng.choice(["put", "get", "cas"])
            v = f"{values[i % 3]}{i}"  # unique written values, as the workload writes
            if kind == "put":
                ops.append(put(s, e, v, outcome=rng.choice(["ok", "ok", "unknown", "fail"]), c=str(i)))
            elif kind == "get":
                prior = [o.value for o in ops if o.kind == "put"] + [None, "zz"]
                ops.append(get(s, e, rng.choice(prior), c=str(i)))
            else:
                prior = [o.value for o in ops if o.kind == "put"] + ["zz"]
                ok = rng.choice([True, False, None])
                ops.append(cas(s, e, rng.choice(prior), v, ok, current=rng.choice(prior + [None]), c=str(i)))
        expected = _brute_force(ops)
        seen[expected] += 1
        got = check_linearizable(ops).status
        if got is Status.UNKNOWN and not [o for o in ops if o.kind in ("put", "get", "cas") and o.outcome != "fail"]:
            continue
        if (got is Status.PASS) != expected:
            disagreements.append((trial, expected, got, ops))
    assert not disagreements, disagreements[:2]
    assert seen[True] > 40 and seen[False] > 40, seen  # both kinds of history were exercised
