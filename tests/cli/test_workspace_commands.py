from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.cli import Runner, init_here


def test_init_creates_a_workspace_once(syllabus: Runner, workdir: Path) -> None:
    result = syllabus("init")
    assert result.code == 0, result.stderr
    assert "Initialized an empty Syllabus workspace" in result.stderr
    ws = workdir / ".syllabus"
    assert (ws / "config.toml").is_file()
    assert (ws / "syllabus.db").is_file()
    assert (ws / "blobs").is_dir()
    again = syllabus("init")
    assert again.code == 1
    assert again.stderr.strip().splitlines() == [f"Error: {ws} is already a Syllabus workspace"]


def test_commands_find_the_workspace_from_a_subfolder(syllabus: Runner, workdir: Path) -> None:
    init_here(workdir)
    deep = workdir / "src" / "pkg"
    deep.mkdir(parents=True)
    result = syllabus("info", "--json", cwd=deep)
    assert result.code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["workspace"] == str(workdir / ".syllabus")
    assert info["database"]["backend"] == "sqlite"
    assert info["database"]["revision"] == info["database"]["head"]
    assert info["blobs_backend"] == "LocalBackend"


def test_info_without_a_workspace_is_a_one_line_error(syllabus: Runner, workdir: Path) -> None:
    result = syllabus("info")
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: no Syllabus workspace here")
    assert not (workdir / ".syllabus").exists()


def test_debug_shows_the_traceback(syllabus: Runner) -> None:
    result = syllabus("info", env={"SYLLABUS_DEBUG": "1"})
    assert result.code == 1
    assert "Traceback" in result.stderr
    assert "WorkspaceNotFoundError" in result.stderr


def test_usage_errors_exit_2(syllabus: Runner) -> None:
    result = syllabus("store", "gc", "--no-such-option")
    assert result.code == 2
    assert "No such option" in result.stderr
    assert syllabus("no-such-command").code == 2


def test_uri_env_points_at_another_workspace(
    syllabus: Runner, workdir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    init_here(other)
    result = syllabus("info", "--json", env={"SYLLABUS_URI": str(other)})
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["workspace"] == str(other / ".syllabus")


def test_db_current_and_upgrade(syllabus: Runner, workdir: Path) -> None:
    init_here(workdir)
    current = syllabus("db", "current", "--json")
    assert current.code == 0
    state = json.loads(current.stdout)
    assert state["up_to_date"] is True
    upgrade = syllabus("db", "upgrade")
    assert upgrade.code == 0
    assert upgrade.stdout.startswith("Already at ")
    history = syllabus("db", "history", "--csv")
    assert history.stdout.splitlines()[0] == "revision,follows,head,message"
    assert state["head"] in history.stdout


def test_version_and_help(syllabus: Runner) -> None:
    assert syllabus("--version").stdout.startswith("syllabus, version ")
    for group in ([], ["db"], ["store"]):
        result = syllabus(*group, "--help")
        assert result.code == 0
        assert "Usage:" in result.stdout


def test_help_lists_commands_without_importing_them() -> None:
    import subprocess
    import sys

    import click

    from syllabus.cli.main import COMMANDS, cli

    ctx = click.Context(cli)
    for name, (_target, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.get_short_help_str(limit=1000) == short, f"update COMMANDS[{name!r}]"
    code = (
        "import sys\nfrom syllabus.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.startswith('syllabus.cli.') or m == 'sqlalchemy'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['syllabus.cli.main']"
