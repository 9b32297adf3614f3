"""Per-key linearizability of register histories: a Wing-Gong-Lowe search with memoization.

Why this shape: etcd keys are independent registers, so a history is linearizable iff each key's
sub-history is (P-compositionality); splitting by key turns one exponential search into many
small ones. Each sub-history is checked like porcupine does it: calls and returns in one
time-ordered linked list, depth-first "linearize the next pending call if the model allows it",
backtracking at a return whose call was not yet placed, and a cache of (linearized set, state)
so no configuration is explored twice.

Operation contract (what kubedrill.load.etcd_workload records):
  put  key, value=str                          result={"revision": int}
  get  key (linearizable read)                 result={"value": str|None, "revision": int}
  cas  key, value={"expected": s, "new": s}    result={"succeeded": bool, "current": s|None, ...}
Other kinds (serializable "sget", "readback", ...) are ignored: a serializable read is allowed
to be stale, so it is not a register read.

Outcomes: "fail" means the request certainly had no effect, so it is dropped. "unknown" writes may
take effect at any time after their invocation: they get an infinite return time, so the search
may place them anywhere later, including "never" (after every observation). Reads that did not
complete carry no information and are dropped.

A search that exceeds its time budget says UNKNOWN, never PASS.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Sequence

from kubedrill.check.verdict import Figure, Verdict
from kubedrill.record import Operation, Outcome

CHECK = "linearizability"

# Register ops after translation. `out` is the observed output; None for an unknown outcome.
_W, _R, _CAS = "w", "r", "cas"


@dataclass(frozen=True)
class RegOp:
    """One register operation of one key, ready for the search."""

    index: int  # position in the caller's history, for error messages
    call: float
    ret: float  # math.inf when the outcome is unknown
    kind: str  # "w" | "r" | "cas"
    arg: Any  # w: value; cas: (expected, new); r: None
    out: Any  # r: value read; cas: (succeeded, current) or None when unknown; w: None
    client: str = ""

    def describe(self) -> str:
        ret = "?" if math.isinf(self.ret) else f"{self.ret:.3f}"
        if self.kind == _W:
            what = f"put({self.arg!r})"
        elif self.kind == _R:
            what = f"get() -> {self.out!r}"
        else:
            exp, new = self.arg
            res = "unknown" if self.out is None else ("ok" if self.out[0] else f"failed, current={self.out[1]!r}")
            what = f"cas({exp!r} -> {new!r}) -> {res}"
        return f"#{self.index} client {self.client} {what} [{self.call:.3f}, {ret}]"


def step(state: Hashable, op: RegOp) -> tuple[bool, Hashable]:
    """The register model: may op happen in this state, and what state does it leave?"""
    if op.kind == _W:
        return True, op.arg
    if op.kind == _R:
        return state == op.out, state
    expected, new = op.arg
    if op.out is None:  # unknown cas: it applies iff the compare holds at its linearization point
        return True, (new if state == expected else state)
    succeeded, current = op.out
    if succeeded:
        return state == expected, new
    # A failed compare also read the current value (the txn's failure branch), so it is an observation.
    return state != expected and state == current, state


def translate(history: Sequence[Operation]) -> dict[str, list[RegOp]]:
    """Split a recorded history by key into register ops, dropping what carries no information."""
    per_key: dict[str, list[RegOp]] = defaultdict(list)
    for i, op in enumerate(history):
        if op.key is None or op.outcome == "fail":
            continue
        known = op.outcome == "ok"
        ret = op.end if known else math.inf
        if op.kind == "put":
            per_key[op.key].append(RegOp(i, op.start, ret, _W, op.value, None, op.client))
        elif op.kind == "get":
            if known:
                per_key[op.key].append(RegOp(i, op.start, op.end, _R, None, (op.result or {}).get("value"), op.client))
        elif op.kind == "cas":
            arg = (op.value["expected"], op.value["new"])
            out = (bool(op.result["succeeded"]), op.result.get("current")) if known else None
            per_key[op.key].append(RegOp(i, op.start, ret, _CAS, arg, out, op.client))
    return dict(per_key)


def prune_unobserved(ops: list[RegOp]) -> list[RegOp]:
    """Drop unknown writes whose value nobody ever observed.

    Sound because such a write, if it happened, was overwritten before any observation (a read,
    a failed cas's current value, or a successful cas's expected value); the only ops that can sit
    between it and that overwrite are other unknown ops, which may be moved to the end. Dropping
    them keeps the search from trying every subset of timed-out writes during a partition.
    """
    observed: set[Any] = set()
    for o in ops:
        if o.kind == _R:
            observed.add(o.out)
        elif o.kind == _CAS:
            observed.add(o.arg[0])
            if o.out is not None and not o.out[0]:
                observed.add(o.out[1])
    kept = []
    for o in ops:
        if math.isinf(o.ret):
            written = o.arg if o.kind == _W else o.arg[1]
            if written not in observed:
                continue
        kept.append(o)
    return kept


class _Node:
    __slots__ = ("op", "is_call", "match", "prev", "next", "slot")

    def __init__(self, op: RegOp | None, is_call: bool, slot: int) -> None:
        self.op = op
        self.is_call = is_call
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None
        self.slot = slot


@dataclass(frozen=True)
class KeyResult:
    key: str
    status: str  # "ok" | "fail" | "timeout"
    ops: int
    detail: str = ""


def _needs(op: RegOp) -> tuple[bool, Any]:
    """The state an observing op requires to be placed (reads, and cas with a known outcome)."""
    if op.kind == _R:
        return True, op.out
    if op.kind == _CAS and op.out is not None:
        return True, (op.arg[0] if op.out[0] else op.out[1])
    return False, None


def _writes(op: RegOp) -> Any:
    return op.arg if op.kind == _W else (op.arg[1] if op.kind == _CAS else _NOTHING)


_NOTHING = object()


def check_key(key: str, ops: list[RegOp], initial: Hashable = None, deadline: float = math.inf) -> KeyResult:
    """WGL search over one key's ops. deadline is a time.monotonic() value.

    The candidates at each point are the pending calls before the first pending return (exactly
    WGL's choice set). They are tried in a heuristic order -- the op whose return comes first,
    then the writes of the value it needs, then the rest by call time -- which reaches a valid
    linearization of a legal history with little backtracking. Every candidate is still tried
    before giving up, so the order changes speed, never the answer.
    """
    n = len(ops)
    if n == 0:
        return KeyResult(key, "ok", 0)
    events: list[tuple[float, int, int]] = []  # (time, 0=call/1=return, op slot)
    for slot, op in enumerate(ops):
        events.append((op.call, 0, slot))
        events.append((op.ret, 1, slot))
    # At equal times calls sort first: touching operations are treated as concurrent (lenient).
    events.sort()
    head = _Node(None, False, -1)
    calls: dict[int, _Node] = {}
    prev = head
    for _, kind, slot in events:
        node = _Node(ops[slot], kind == 0, slot)
        if kind == 0:
            calls[slot] = node
        else:
            calls[slot].match = node
            node.match = calls[slot]
        node.prev = prev
        prev.next = node
        prev = node

    def lift(e: _Node) -> None:
        assert e.prev is not None and e.match is not None
        e.prev.next = e.next
        if e.next is not None:
            e.next.prev = e.prev
        m = e.match
        assert m.prev is not None
        m.prev.next = m.next
        if m.next is not None:
            m.next.prev = m.prev

    def unlift(e: _Node) -> None:
        m = e.match
        assert m is not None and m.prev is not None and e.prev is not None
        m.prev.next = m
        if m.next is not None:
            m.next.prev = m
        e.prev.next = e
        if e.next is not None:
            e.next.prev = e

    def candidates() -> list[_Node]:
        pending: list[_Node] = []
        e = head.next
        while e is not None and e.is_call:
            pending.append(e)
            e = e.next
        if e is None or e.match is None:
            return pending
        forced = e.match
        need, value = _needs(forced.op)  # type: ignore[arg-type]
        first = [forced]
        if need:
            first += [c for c in pending if c is not forced and _writes(c.op) == value]  # type: ignore[arg-type]
        chosen = set(map(id, first))
        return first + [c for c in pending if id(c) not in chosen]

    # Unique-value pruning: a value written by at most one op (or the initial value, if nobody
    # writes it) can never come back once the register moves away from it. Moving away while
    # an unplaced op still needs to observe it is a dead end, cut at once instead of discovered
    # after exploring every later interleaving.
    writers: dict[Hashable, int] = defaultdict(int)
    for op in ops:
        w = _writes(op)
        if w is not _NOTHING:
            writers[w] += 1
    observes: list[Any] = []
    pending_obs: dict[Hashable, int] = defaultdict(int)
    for op in ops:
        need, value = _needs(op)
        if need and (writers[value] <= 1 if value != initial else writers[value] == 0):
            observes.append(value)
            pending_obs[value] += 1
        else:
            observes.append(_NOTHING)

    cache: set[tuple[int, Hashable]] = set()
    stack: list[tuple[_Node, Hashable, list[_Node], int]] = []
    linearized = 0
    state: Hashable = initial
    cands = candidates()
    idx = 0
    best_depth = -1
    stuck_at: RegOp | None = None
    stuck_state: Hashable = initial
    blockers: list[RegOp] = []
    steps = 0
    while head.next is not None:
        steps += 1
        if steps & 0x3FF == 0 and time.monotonic() > deadline:
            return KeyResult(key, "timeout", n, f"search budget exhausted after {steps} steps")
        if idx < len(cands):
            node = cands[idx]
            ok, new_state = step(state, node.op)  # type: ignore[arg-type]
            if ok and new_state != state and pending_obs.get(state, 0) - (observes[node.slot] == state) > 0:
                ok = False  # someone still has to see `state`, and it would be gone for good
            if ok:
                new_lin = linearized | (1 << node.slot)
                if (new_lin, new_state) not in cache:
                    cache.add((new_lin, new_state))
                    stack.append((node, state, cands, idx))
                    state = new_state
                    linearized = new_lin
                    if observes[node.slot] is not _NOTHING:
                        pending_obs[observes[node.slot]] -= 1
                    lift(node)
                    cands = candidates()
                    idx = 0
                    continue
            idx += 1
            continue
        # Every candidate failed here: the first pending return cannot be reached. Backtrack.
        if len(stack) > best_depth:
            best_depth = len(stack)
            stuck_at = cands[0].op if cands else None
            stuck_state = state
            blockers = [ops[i] for i in range(n) if not (linearized >> i) & 1 and observes[i] == state
                        and ops[i] is not stuck_at][:2]
        if not stack:
            return KeyResult(key, "fail", n, _explain(key, ops, best_depth, stuck_at, stuck_state, blockers))
        node, state, cands, idx = stack.pop()
        linearized &= ~(1 << node.slot)
        if observes[node.slot] is not _NOTHING:
            pending_obs[observes[node.slot]] += 1
        unlift(node)
        idx += 1
    return KeyResult(key, "ok", n)


def _explain(key: str, ops: list[RegOp], depth: int, stuck: RegOp | None, state: Hashable, blockers: list[RegOp]) -> str:
    where = stuck.describe() if stuck else "?"
    why = f"; ops that still had to see {state!r}: " + ", ".join(b.describe() for b in blockers) if blockers else ""
    return (
        f"key {key!r}: no linearization of {len(ops)} ops exists; the longest valid prefix placed {max(depth, 0)} "
        f"ops, leaving value {state!r}, and then could not place {where} before it returned{why}"
    )


def check_linearizable(
    history: Iterable[Operation],
    time_budget_s: float = 10.0,
    initial: dict[str, Any] | None = None,
    clock: Any = time.monotonic,
) -> Verdict:
    """Check every key's register history; FAIL on any non-linearizable key, UNKNOWN on budget.

    initial: the value of each key before the history (absent keys start as None).
    clock is injectable so tests can force the budget to run out.
    """
    hist = list(history)
    t0 = clock()
    deadline = t0 + time_budget_s
    per_key = translate(hist)
    total = sum(len(v) for v in per_key.values())
    unknown_ops = sum(1 for v in per_key.values() for o in v if math.isinf(o.ret))
    if total == 0:
        return Verdict.unknown(CHECK, f"no put/get/cas operations to check among {len(hist)} recorded")
    results: list[KeyResult] = []
    for key in sorted(per_key):
        ops = prune_unobserved(per_key[key])
        if clock() > deadline:
            results.append(KeyResult(key, "timeout", len(ops), "not started: budget exhausted"))
            continue
        results.append(check_key(key, ops, (initial or {}).get(key), deadline))
    elapsed = clock() - t0
    figures = [
        Figure("linearizability_ops_checked", total, "ops"),
        Figure("linearizability_keys", len(per_key), "keys"),
        Figure("linearizability_unknown_ops", unknown_ops, "ops"),
        Figure("linearizability_checker_time", round(elapsed, 4), "s"),
    ]
    failed = [r for r in results if r.status == "fail"]
    timed_out = [r for r in results if r.status == "timeout"]
    if failed:
        more = f" (and {len(failed) - 3} more keys)" if len(failed) > 3 else ""
        return Verdict.fail(CHECK, "; ".join(r.detail for r in failed[:3]) + more, figures)
    if timed_out:
        return Verdict.unknown(
            CHECK,
            f"time budget of {time_budget_s}s exhausted: {len(timed_out)} of {len(results)} keys undecided "
            f"(e.g. {timed_out[0].key!r} with {timed_out[0].ops} ops); raise the budget or record fewer ops",
            figures,
        )
    return Verdict.ok(
        CHECK, f"{total} ops on {len(per_key)} keys linearizable ({unknown_ops} with unknown outcome) in {elapsed:.2f}s",
        figures,
    )


def synthetic_history(
    n_ops: int, n_keys: int, clients: int = 8, seed: int = 0, unknown_rate: float = 0.02
) -> list[Operation]:
    """A random history that is linearizable by construction, for benchmarks and tests.

    Each client runs ops back to back; every op gets a linearization point inside its
    [start, end] interval and is applied to a per-key register in point order, so outputs are
    those of a real atomic register. A fraction of writes get outcome "unknown" and, at random,
    did or did not take effect. Deterministic for a given seed.
    """
    import random

    rng = random.Random(seed)
    planned: list[tuple[float, float, float, str, str, str, Any]] = []  # (point, start, end, client, kind, key, arg)
    per_client = max(1, n_ops // clients)
    seq = 0
    for c in range(clients):
        t = rng.uniform(0, 0.01)
        for _ in range(per_client):
            start = t + rng.uniform(0, 0.002)
            end = start + rng.uniform(0.001, 0.02)
            point = rng.uniform(start, end)
            key = f"k{rng.randrange(n_keys)}"
            kind = rng.choices(["put", "get", "cas"], [0.4, 0.4, 0.2])[0]
            seq += 1
            planned.append((point, start, end, str(c), kind, key, f"c{c}-{seq}"))
            t = end
    planned.sort()
    state: dict[str, Any] = {}
    last_seen: dict[str, Any] = {}
    ops: list[Operation] = []
    for point, start, end, client, kind, key, arg in planned:
        cur = state.get(key)
        if kind == "put":
            lost_unknown = rng.random() < unknown_rate
            applied = not lost_unknown or rng.random() < 0.5
            if applied:
                state[key] = arg
            outcome: Outcome = "unknown" if lost_unknown else "ok"
            ops.append(Operation("put", start, end, outcome, client, key, arg, {"revision": 0} if outcome == "ok" else None))
        elif kind == "get":
            ops.append(Operation("get", start, end, "ok", client, key, None, {"value": cur, "revision": 0}))
            last_seen[key] = cur
        else:
            expected = last_seen.get(key) if rng.random() < 0.7 else "nope"
            expected = "nope" if expected is None else expected
            if cur == expected:
                state[key] = arg
                res = {"succeeded": True, "current": None, "revision": 0}
            else:
                res = {"succeeded": False, "current": cur, "revision": 0}
            ops.append(Operation("cas", start, end, "ok", client, key, {"expected": expected, "new": arg}, res))
    return sorted(ops, key=lambda o: (o.start, o.end))
