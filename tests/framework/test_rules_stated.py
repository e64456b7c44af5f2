"""Every hidden check's rule is stated to students: `tests/<id>/rules.toml` quotes the handout sentence that states
it and names the public check that tests it, or says in one sentence why it stays hidden; and no hidden check
expects an error message that the handout does not give."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib

import pytest

from grader.config import Assignment, assignment_ids, load_assignment

CHECKED = [i for i in assignment_ids() if any(load_assignment(i).checks_dir.glob("test_*.py"))]


def hidden_checks(assignment: Assignment) -> set[str]:
    """The names of the check functions the assignment's hidden test files define or import."""
    names = set()
    for path in sorted(assignment.checks_dir.glob("test_*.py")):
        module_name = f"_rules_{assignment.id}_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses in a check file look their module up here
        try:
            spec.loader.exec_module(module)
        finally:
            del sys.modules[module_name]
        names |= {name for name, value in vars(module).items() if name.startswith("test_") and callable(value)}
    return names


def handout(assignment: Assignment) -> str:
    return " ".join((assignment.folder / "README.md").read_text().split())


def public_checks(assignment: Assignment) -> set[str]:
    return {node.name for path in sorted((assignment.folder / "tests").glob("test_*.py"))
            for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}


def raises_matches(assignment: Assignment) -> list[str]:
    """The `match=` patterns of the `pytest.raises` calls in the hidden test files."""
    calls = [node for path in sorted(assignment.checks_dir.glob("test_*.py"))
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
             and ast.unparse(node.func) == "pytest.raises"]
    return [keyword.value.value for call in calls for keyword in call.keywords
            if keyword.arg == "match" and isinstance(keyword.value, ast.Constant)]


@pytest.mark.parametrize("assignment_id", CHECKED)
def test_every_hidden_check_is_stated_in_the_handout(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    rules_file = assignment.checks_dir / "rules.toml"
    assert rules_file.is_file(), f"{assignment_id} has hidden checks but no tests/{assignment_id}/rules.toml"
    rules = tomllib.loads(rules_file.read_text())
    checks = hidden_checks(assignment)
    assert sorted(checks - set(rules)) == [], f"hidden checks without a rule in {rules_file.name}"
    assert sorted(set(rules) - checks) == [], f"rules in {rules_file.name} for checks that do not exist"
    text, public = handout(assignment), public_checks(assignment)
    for check, rule in rules.items():
        assert rule["handout"] in text, f"{check}: the handout does not say {rule['handout']!r}"
        assert ("public" in rule) != ("hidden_because" in rule), f"{check}: give `public` or `hidden_because`"
        if "public" in rule:
            assert rule["public"] in public, f"{check}: the public checks have no {rule['public']}"
        else:
            assert rule["hidden_because"].endswith("."), f"{check}: hidden_because must be one sentence"


@pytest.mark.parametrize("assignment_id", CHECKED)
def test_hidden_checks_expect_only_error_messages_the_handout_gives(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    text = handout(assignment).lower()
    unstated = [pattern for pattern in raises_matches(assignment)
                if re.sub(r"\\(.)", r"\1", pattern).lower() not in text]
    assert not unstated, f"{assignment_id}: hidden checks expect error messages the handout never gives: {unstated}"
