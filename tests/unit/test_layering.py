"""The layering contract of the engine: each stage imports only the stages below it.

Why a test: checkers must stay pure functions over records (unit-testable by hand, reusable by
every drill), and a drill must be addable without touching the stages it uses. An import that goes
upward -- a checker reading a disruption's class, a disruption calling a checker -- is how that
erodes, one convenient line at a time. Every import counts, including those inside functions.

Bottom to top (a stage may import its own package and any stage in a lower row):

    record                         what happened, as plain data (and kubeadm's version facts)
    check                          pure checkers: records -> Verdict
    cluster etcd                   the cluster handle, kind/existing lifecycle, waits, states;
                                   standalone etcd clusters in containers
    observe workload load          recorders and the deploy path over a cluster (peers)
    disrupt                        disruptions: inject, verify, heal
    scenarios preflight            drills: a disruption under load, recorded, then judge();
                                   preflight's checks against a real API server
    config options pytest_plugin cli soak __main__   the user-facing entry points (they may use pytest)

`report` sits beside the pipeline: it reads records and verdicts only, and no engine stage
imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "kubedrill"

LAYERS: list[tuple[str, ...]] = [
    ("record",),
    ("check",),
    ("cluster", "etcd"),
    ("observe", "workload", "load"),
    ("disrupt",),
    ("scenarios", "preflight"),
    ("config", "options", "pytest_plugin", "cli", "soak", "__main__", "__init__"),
]
REPORT_MAY_IMPORT = {"record", "check", "report", "__init__"}
ENTRY_POINTS = set(LAYERS[-1])
LEVEL = {stage: i for i, row in enumerate(LAYERS) for stage in row}


def _stage(module: str) -> str | None:
    """kubedrill.check.shutdown -> check; kubedrill -> __init__; anything else -> None."""
    parts = module.split(".")
    if parts[0] != "kubedrill":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(root).with_suffix("")
    package = ".".join(rel.parts[:-1] if rel.name != "__init__" else rel.parts[:-1])
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
    return out


def violations(root: Path = ROOT) -> list[str]:
    """Every import in root/kubedrill that breaks the contract, as "file:line imports X: why"."""
    found: list[str] = []
    for path in sorted(p for p in (root / "kubedrill").rglob("*.py") if "__pycache__" not in p.parts):
        rel = path.relative_to(root)
        own = _stage(".".join(rel.with_suffix("").parts))
        assert own is not None
        for line, mod in _imports(path, root):
            where = f"{rel}:{line} imports {mod}"
            top = mod.split(".")[0]
            if top in ("fixtures", "suites", "tests", "benchmarks"):
                found.append(f"{where}: the engine must not import test code")
                continue
            if top in ("pytest", "_pytest") and own not in ENTRY_POINTS:
                found.append(f"{where}: only the entry points may import pytest (the engine runs without it)")
                continue
            target = _stage(mod)
            if target is None or target == own:
                continue
            if own == "report":
                if target not in REPORT_MAY_IMPORT:
                    found.append(f"{where}: the report reads records and verdicts only")
                continue
            if target == "report":
                if LEVEL.get(own, 0) < LEVEL["scenarios"] + 1:
                    found.append(f"{where}: engine stages record, they do not report")
                continue
            if own not in LEVEL:
                found.append(f"{rel}: stage {own!r} is not in the layering contract (tests/unit/test_layering.py)")
                break
            if target not in LEVEL:
                found.append(f"{where}: stage {target!r} is not in the layering contract")
                continue
            if LEVEL[target] > LEVEL[own]:
                found.append(f"{where}: {own} sits below {target}")
            elif LEVEL[target] == LEVEL[own] and LEVEL[own] == LEVEL["observe"]:
                found.append(f"{where}: {own} and {target} are peers and stay independent")
    return found


def test_every_stage_imports_only_the_stages_below_it() -> None:
    bad = violations()
    assert not bad, "layering contract broken:\n  " + "\n  ".join(bad)


def test_checkers_import_only_records_and_verdicts() -> None:
    """Stated on its own because it is the rule the rest rests on."""
    for path in sorted((PKG / "check").glob("*.py")):
        for line, mod in _imports(path):
            stage = _stage(mod)
            assert stage in (None, "record", "check"), f"{path.relative_to(ROOT)}:{line} imports {mod}"


@pytest.mark.parametrize("source, expected", [
    ("from kubedrill.disrupt.node import DrainNode\n", "check sits below disrupt"),
    ("def f():\n    from kubedrill.report import series\n", "they do not report"),
    ("import pytest\n", "only the entry points may import pytest"),
])
def test_the_contract_catches_an_upward_import(tmp_path: Path, source: str, expected: str) -> None:
    """The contract's checker can fail: an upward import planted in a copy of a checker is reported."""
    (tmp_path / "kubedrill" / "check").mkdir(parents=True)
    (tmp_path / "kubedrill" / "check" / "planted.py").write_text(source)
    found = violations(tmp_path)
    assert any(expected in v for v in found), found
