"""run_recipe: the one way a build recipe runs (node image, kind, preflight's kube-apiservers)."""

from __future__ import annotations

import pytest

from kubedrill.cluster.setup import SetupError, run_recipe


def test_progress_lines_are_echoed_and_all_lines_returned() -> None:
    seen: list[str] = []
    lines = run_recipe(["bash", "-c", "echo '[kubedrill build] step 1'; echo result=ok"], "a recipe", 30,
                       echo=seen.append)
    assert lines == ["[kubedrill build] step 1", "result=ok"]
    assert seen == ["a recipe ...", "  [kubedrill build] step 1"]


def test_a_failure_names_the_recipes_own_error_line() -> None:
    script = "echo '[kubedrill build] ERROR: 2 GiB free needed on /var'; exit 3"
    with pytest.raises(SetupError, match=r"^2 GiB free needed on /var$"):
        run_recipe(["bash", "-c", script], "a recipe", 30, echo=lambda _: None)


def test_a_failure_without_an_error_line_shows_the_tail() -> None:
    with pytest.raises(SetupError, match=r"a recipe failed \(exit 4\)(.|\n)*last words"):
        run_recipe(["bash", "-c", "echo last words; exit 4"], "a recipe", 30, echo=lambda _: None)
