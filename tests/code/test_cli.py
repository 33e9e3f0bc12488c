"""The code, env and notebook commands end to end: a training script run twice through
the fluent API in a real git repository captures its code; the CLI reads it back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.code.conftest import GIT_ENV, git, make_repo, notebook, write_nb
from tests.fixtures.cli import Runner, init_here

SCRIPT = """\
import sys
import syllabus

with syllabus.start_run(params={"lr": sys.argv[1]}):
    syllabus.log_metric("acc", 0.5)
"""


def run_script(workdir: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")} | GIT_ENV
    subprocess.run(
        [sys.executable, "train.py", *args], cwd=workdir, env=env, check=True, timeout=120
    )


def test_code_and_env_commands(syllabus_here: Runner, workdir: Path) -> None:
    make_repo(workdir, {"train.py": SCRIPT, ".gitignore": ".syllabus/\n"})
    git(workdir, "remote", "add", "origin", "https://bob:pa55word@git.example.com/ml.git")
    init_here(workdir)
    run_script(workdir, "0.1")
    (workdir / "helper.py").write_text("H = 1\n")  # untracked
    with (workdir / "train.py").open("a") as fh:
        fh.write("# tuned\n")
    run_script(workdir, "0.2")

    shown = syllabus_here("code", "show", "latest", "--json")
    assert shown.code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["entry_point"] == "train.py"
    assert data["argv"] == ["0.2"]
    assert data["snapshot"]["git"]["remote"] == "https://git.example.com/ml.git"
    assert data["snapshot"]["git"]["untracked_count"] == 1
    assert "pa55word" not in shown.stdout

    text = syllabus_here("code", "show", "latest", "--patch")
    assert "+# tuned" in text.stdout
    assert any(line.split() == ["dirty", "yes"] for line in text.stdout.splitlines())

    diff = syllabus_here("code", "diff", "latest~1", "latest")
    assert diff.code == 0
    assert "+# tuned" in diff.stdout
    assert "1 added, 0 removed, 1 modified" in diff.stderr

    out = workdir.parent / "restored"
    checkout = syllabus_here("code", "checkout", "latest", str(out))
    assert checkout.code == 0, checkout.stderr
    assert (out / "train.py").read_text() == (workdir / "train.py").read_text()
    assert (out / "helper.py").read_text() == "H = 1\n"
    again = syllabus_here("code", "checkout", "latest", str(out))
    assert again.code == 1
    assert again.stderr.startswith("Error: ")
    assert "not empty" in again.stderr

    env_diff = syllabus_here("env", "diff", "latest~1", "latest")
    assert env_diff.code == 0
    assert "same environment" in env_diff.stderr
    packages = syllabus_here("env", "show", "latest", "--packages", "--csv")
    assert "sqlalchemy," in packages.stdout

    missing = syllabus_here("code", "show", "ffffff")
    assert missing.code == 1
    assert "captured no code" in missing.stderr


def test_capture_can_be_switched_off(syllabus_here: Runner, workdir: Path) -> None:
    make_repo(workdir, {"train.py": SCRIPT})
    init_here(workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    env["SYLLABUS_CAPTURE_CODE"] = "false"
    subprocess.run([sys.executable, "train.py", "1"], cwd=workdir, env=env, check=True)
    result = syllabus_here("code", "show", "latest")
    assert result.code == 1
    assert "captured no code" in result.stderr


def test_notebook_commands(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    path = write_nb(workdir / "nb" / "eda.ipynb", notebook(("code", "a = 1", "x")))
    first = syllabus_here("notebook", "checkpoint", "nb/eda.ipynb", "-m", "start")
    assert first.code == 0
    assert first.stdout.strip() == "nb/eda.ipynb@1"
    same = syllabus_here("notebook", "checkpoint", "nb/eda.ipynb")
    assert "no new checkpoint" in same.stderr
    write_nb(path, notebook(("code", "a = 2", "x"), ("markdown", "# Notes", "y")))
    assert (
        syllabus_here("notebook", "checkpoint", "nb/eda.ipynb").stdout.strip() == "nb/eda.ipynb@2"
    )

    log = syllabus_here("notebook", "log", "nb/eda.ipynb", "--json")
    assert [c["version"] for c in json.loads(log.stdout)] == [2, 1]
    diff = syllabus_here("notebook", "diff", "nb/eda.ipynb@1", "nb/eda.ipynb@2")
    assert diff.code == 0
    assert "[1] modified code cell: source" in diff.stdout
    assert "-a = 1" in diff.stdout
    assert "+a = 2" in diff.stdout
    assert "[2] added markdown cell: # Notes" in diff.stdout
    shown = syllabus_here("notebook", "show", "nb/eda.ipynb@2")
    assert "[2] markdown # Notes" in shown.stdout

    write_nb(path, notebook(("code", "a = 3  # not checkpointed", "x")))
    refused = syllabus_here("notebook", "restore", "nb/eda.ipynb@1")
    assert refused.code == 1
    assert "in no checkpoint" in refused.stderr
    against_file = syllabus_here("notebook", "diff", "nb/eda.ipynb")
    assert "+a = 3  # not checkpointed" in against_file.stdout
    assert syllabus_here("notebook", "restore", "nb/eda.ipynb@1", "--force").code == 0
    assert json.loads(path.read_text())["cells"][0]["source"] == ["a = 1"]
    # From a sub-folder, the same notebook has the same name.
    sub = syllabus_here("notebook", "log", "eda.ipynb", cwd=workdir / "nb")
    assert sub.code == 0, sub.stderr
    assert "start" in sub.stdout
