import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gthd.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


ALL = [("",)] + [p for p, _ in _commands(main)]


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "gthd")
def test_every_command_has_help_with_an_example(path):
    args = [a for a in path if a]
    r = CliRunner().invoke(main, args + ["--help"], catch_exceptions=False)
    assert r.exit_code == 0
    assert "Example:" in r.output and "gthd " in r.output.split("Example:")[1]


def test_every_command_is_documented():
    docs = (ROOT / "README.md").read_text() + "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    for path, _ in _commands(main):
        assert f"gthd {' '.join(path)}" in docs, f"gthd {' '.join(path)} is not in README.md or docs/"


def test_simulate_info_sheet(tmp_path):
    r = CliRunner().invoke(main, ["simulate", str(tmp_path / "s"), "--seed", "1", "--duration", "1", "--boards", "0", "--clicks", "3"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert re.search(r"wrote .*: 30 frames", r.output)
    r = CliRunner().invoke(main, ["session", "info", str(tmp_path / "s")], catch_exceptions=False)
    assert "status complete" in r.output and "30 frames 640x480" in r.output
    r = CliRunner().invoke(main, ["session", "sheet", str(tmp_path / "s"), "-o", str(tmp_path / "sheet.png"), "-n", "4"], catch_exceptions=False)
    assert r.exit_code == 0 and (tmp_path / "sheet.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hand-size", "300:40"], "hand size range"),
        (["--hand-size", "big"], "MIN:MAX"),
        (["--duration", "-1"], "duration"),
        (["--size", "640"], "WIDTHxHEIGHT"),
        (["--offset-ms", "30"], "clock offset"),
        (["--difficulty", "insane"], "insane"),
        (["--click-joint", "ELBOW"], "unknown joint"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_is_written(tmp_path, args, message):
    r = CliRunner().invoke(main, ["simulate", str(tmp_path / "s"), "--duration", "1"] + args, catch_exceptions=False)
    assert r.exit_code == 2 or r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output
    assert [l for l in r.output.splitlines() if l.startswith("Error:")]
    assert not (tmp_path / "s").exists()
    assert not list(tmp_path.iterdir())  # no temporary leftovers either


def test_existing_output_is_kept_unless_forced(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    r = CliRunner().invoke(main, ["simulate", str(out), "--duration", "1", "--boards", "0"], catch_exceptions=False)
    assert r.exit_code == 1 and r.output.startswith("Error:") and "--force" in r.output
    assert (out / "precious.txt").read_text() == "keep me"
    r = CliRunner().invoke(main, ["simulate", str(out), "--duration", "1", "--boards", "0", "--force"], catch_exceptions=False)
    assert r.exit_code == 0 and not (out / "precious.txt").exists() and (out / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_reading_a_non_session_is_one_line(tmp_path):
    (tmp_path / "x").mkdir()
    r = CliRunner().invoke(main, ["session", "info", str(tmp_path / "x")], catch_exceptions=False)
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "manifest.json" in r.output
