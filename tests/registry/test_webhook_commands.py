"""`syllabus models webhooks add|list|remove` through the CLI in this process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.cli import Runner, init_here


def test_add_list_remove(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    added = syllabus_here(
        "models",
        "webhooks",
        "add",
        "http://127.0.0.1:9/hook",
        "--secret",
        "s3cret",
        "--event",
        "stage_changed",
        "--model",
        "churn",
    )
    assert added.code == 0, added.stderr
    hook_id = added.stdout.strip()
    listed = json.loads(syllabus_here("models", "webhooks", "list", "--json").stdout)
    assert [(h["id"], h["url"], h["events"], h["model"]) for h in listed] == [
        (hook_id, "http://127.0.0.1:9/hook", "stage_changed", "churn")
    ]
    assert "s3cret" not in syllabus_here("models", "webhooks", "list", "--csv").stdout
    bad = syllabus_here("models", "webhooks", "remove", "xyz")
    assert bad.code == 1
    assert "give its URL or at least 6 hex characters" in bad.stderr
    assert syllabus_here("models", "webhooks", "remove", hook_id[:14]).code == 0
    assert json.loads(syllabus_here("models", "webhooks", "list", "--json").stdout) == []
    again = syllabus_here("models", "webhooks", "remove", "http://127.0.0.1:9/hook")
    assert again.code == 1
    assert "no webhook sends to" in again.stderr
    no_secret = syllabus_here("models", "webhooks", "add", "http://127.0.0.1:9/x")
    assert no_secret.code == 2
