"""The rooms' import rules (pyproject.toml, [tool.importlinter]; docs/architecture.md),
checked on the package as it is, and shown to fail on a copy with one wrong import."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": str(LINT.parent)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def lint_available():
    if not LINT.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")


def test_the_import_rules_hold(lint_available):
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "broken" not in r.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize("room, wrong", [
    ("capture/engine.py", "from ..benchmark import train as _no"),  # a lower room reaching up
    ("dataset/build.py", "from ..cli import main as _no"),  # the library importing the CLI
    ("session.py", "from .sim import truth as _no"),  # the core knowing the simulator
])  # fmt: skip
def test_a_wrong_import_breaks_them(lint_available, tmp_path, room, wrong):
    shutil.copytree(ROOT / "gthd", tmp_path / "gthd", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "gthd" / room
    target.write_text(target.read_text() + f"\n{wrong}\n")
    r = _lint(tmp_path)
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout[-2000:]


def test_the_code_is_linted_and_formatted():
    """ruff (pyproject.toml, [tool.ruff]): pyflakes, import order, and the formatter's
    layout. Fix with `.venv/bin/ruff check --fix . && .venv/bin/ruff format .`."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    paths = ["gthd", "tests", "perf", "docs/pictures.py"]
    r = subprocess.run([str(ruff), "check", "--no-cache", *paths], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    r = subprocess.run([str(ruff), "format", "--check", "--no-cache", *paths], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]


def _cli_problems(cli: Path, max_body: int = 50) -> list[str]:
    """What breaks "the CLI parses, makes one call and prints": a command body (its
    docstring aside) longer than ``max_body`` lines, or a private library name imported."""
    import ast

    problems = []
    for path in sorted(cli.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:  # from ..room import name
                problems += [
                    f"{path.name}: imports the private {a.name} from {node.module}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
            if isinstance(node, ast.FunctionDef) and node.body:
                body = node.body[1:] if isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) else node.body
                lines = body[-1].end_lineno - body[0].lineno + 1 if body else 0
                if lines > max_body:
                    problems.append(f"{path.name}: {node.name} is {lines} lines")
    return problems


def test_the_command_line_stays_thin(tmp_path):
    assert _cli_problems(ROOT / "gthd" / "cli") == []
    shutil.copytree(ROOT / "gthd" / "cli", tmp_path / "cli", ignore=shutil.ignore_patterns("__pycache__"))
    qa = tmp_path / "cli" / "qa.py"  # a command that grew logic, and one reaching for a private name
    qa.write_text(qa.read_text() + "\n\ndef grown():\n" + "    x = 1\n" * 51 + "\n\nfrom ..qa.runner import _dilate\n")
    assert _cli_problems(tmp_path / "cli") == ["qa.py: grown is 51 lines", "qa.py: imports the private _dilate from qa.runner"]
