"""Every wait in the tests scales with the machine's load (tests/timeouts.py): CI machines are shared, so a fixed
deadline that holds on a quiet machine fails on a busy one. A literal ``timeout=N`` or ``.wait(N)`` is allowed only
where the callee scales it itself, or on a line that says why it must not scale (``# unscaled: <reason>``)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
# Helpers that take seconds and scale them themselves (tests/timeouts.py, tests/ansible_env.py, their wrappers).
SCALING = {
    "wait_until",
    "wait_until_async",
    "wait_for",
    "run_playbook",
    "run_ansible",
    "run_inventory",
    "terminate",
    "deadline",
    "scaled",
    "let_time_pass",
    "page_without_errors",
    "new_context",
}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float) and node.value > 0


def unscaled_waits(path: Path) -> list[str]:
    """``file:line: code`` for each literal wait in ``path`` that is not scaled."""
    text = path.read_text()
    lines = text.splitlines()
    name = path.relative_to(TESTS.parent) if path.is_relative_to(TESTS.parent) else path
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call) or _name(node.func) in SCALING:
            continue
        literal = [kw.value for kw in node.keywords if kw.arg == "timeout" and _literal(kw.value)]
        if _name(node.func) == "wait" and node.args and _literal(node.args[0]):
            literal.append(node.args[0])
        for value in literal:
            if "unscaled:" not in lines[value.lineno - 1]:
                found.append(f"{name}:{value.lineno}: {lines[value.lineno - 1].strip()}")
    return found


def test_every_wait_in_the_tests_scales_with_load() -> None:
    offenders = [hit for path in sorted(TESTS.rglob("*.py")) for hit in unscaled_waits(path)]
    assert not offenders, "use tests.timeouts.scaled(...) (or '# unscaled: <why>'):\n" + "\n".join(offenders)


def test_the_check_finds_a_fixed_wait(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "requests.get(url, timeout=10)\nproc.wait(5)\nrequests.get(url, timeout=scaled(10))\n"
        "wait_until(check, timeout=20)\nexec(script, timeout=1.5)  # unscaled: the timeout under test\n"
    )
    assert [hit.split(":")[1] for hit in unscaled_waits(sample)] == ["1", "2"]
