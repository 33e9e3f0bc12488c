from __future__ import annotations

from pathlib import Path

import pytest

from syllabus.config import SETTINGS, find_workspace, load_settings, parse_duration, parse_size
from syllabus.errors import ConfigError


def _workspace(folder: Path, body: str = "") -> Path:
    ws = folder / ".syllabus"
    ws.mkdir(parents=True)
    (ws / "config.toml").write_text(body)
    return ws


def test_find_workspace_walks_up(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_workspace(deep) == ws
    assert find_workspace(ws) == ws


def test_precedence_argument_env_workspace_default(tmp_path: Path) -> None:
    _workspace(tmp_path, '[store]\ngc_grace = "2h"\ntransfer_jobs = 3\n')
    s = load_settings(tmp_path, env={})
    assert s.gc_grace == 7200
    assert s.sources["gc_grace"] == "workspace"
    assert s.transfer_jobs == 3
    s = load_settings(tmp_path, env={"SYLLABUS_GC_GRACE": "30m"})
    assert s.gc_grace == 1800
    assert s.sources["gc_grace"] == "environment"
    s = load_settings(tmp_path, env={"SYLLABUS_GC_GRACE": "30m"}, overrides={"gc_grace": "10s"})
    assert s.gc_grace == 10
    assert s.sources["gc_grace"] == "argument"
    other = tmp_path.parent / f"{tmp_path.name}-other"
    other.mkdir()
    s = load_settings(other, env={})
    assert s.workspace is None
    assert s.gc_grace == 86400
    assert s.sources["gc_grace"] == "default"


def test_uri_folder_names_the_workspace(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "proj")
    s = load_settings(tmp_path, env={"SYLLABUS_URI": str(tmp_path / "proj")})
    assert s.workspace == ws
    assert s.uri is None
    s = load_settings(tmp_path, env={"SYLLABUS_URI": "postgresql://u@h/db"})
    assert s.uri == "postgresql://u@h/db"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SYLLABUS_GC_GRACE": "soon"}, "invalid duration"),
        ({"SYLLABUS_DEBUG": "maybe"}, "must be true or false"),
        ({"SYLLABUS_TRANSFER_JOBS": "0"}, "at least 1"),
        ({"SYLLABUS_TRANSFER_JOBS": "many"}, "must be an integer"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(tmp_path, env=env)
    assert "\n" not in str(info.value)


def test_broken_toml_and_unknown_setting(tmp_path: Path) -> None:
    _workspace(tmp_path, "[store\n")
    with pytest.raises(ConfigError, match=r"config\.toml"):
        load_settings(tmp_path, env={})
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(tmp_path, env={}, overrides={"colour": "red"})


def test_units() -> None:
    assert parse_duration("1.5h") == 5400
    assert parse_duration("2w") == 14 * 86400
    assert parse_size("64KiB") == 65536
    assert parse_size("1GB") == 10**9
    assert parse_size("4M") == 4 << 20
    with pytest.raises(ConfigError):
        parse_size("lots")


def test_every_setting_has_env_and_help() -> None:
    for setting in SETTINGS:
        assert setting.env == "SYLLABUS_" + setting.name.upper()
        assert setting.help
