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
