"""docs/DEVELOPING.md's worked example is the code: every block that starts with `# file: PATH` is
that file's whole content, and every indented excerpt of a suite appears in it verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "DEVELOPING.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def test_file_blocks_are_the_files() -> None:
    files = [b for b in blocks() if b.startswith("# file: ")]
    assert len(files) >= 2, "the worked example shows the disruption and the checker in full"
    for b in files:
        first, _, body = b.partition("\n")
        path = ROOT / first.removeprefix("# file: ").strip()
        assert path.is_file(), f"DEVELOPING.md shows {path}, which does not exist"
        assert body == path.read_text(), f"DEVELOPING.md's copy of {path.relative_to(ROOT)} differs from the file"


def test_excerpts_appear_in_the_suite() -> None:
    smoke = (ROOT / "suites" / "smoke" / "test_smoke.py").read_text()
    excerpts = [b for b in blocks() if not b.startswith("# file: ")]
    assert excerpts
    for b in excerpts:
        assert b in smoke, f"this excerpt of the smoke suite is not in suites/smoke/test_smoke.py:\n{b}"


def test_the_example_touches_three_engine_files_and_registers_itself() -> None:
    from kubedrill.disrupt.base import lookup

    assert lookup("taint-node").__name__ == "TaintNode"
