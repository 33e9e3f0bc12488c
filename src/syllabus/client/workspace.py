"""Creating and finding workspaces (``.syllabus/`` folders)."""

from __future__ import annotations

import logging
from pathlib import Path

from syllabus import __version__
from syllabus._utils.ids import new_id
from syllabus.config import BLOBS_DIR, CONFIG_FILE, DB_FILE, WORKSPACE_DIR
from syllabus.errors import AlreadyExistsError, InvalidArgumentError

__all__ = ["init_workspace"]

log = logging.getLogger("syllabus")

_CONFIG_TEMPLATE = """\
# Syllabus workspace settings. Environment variables (SYLLABUS_*) and explicit
# arguments override these; see docs/settings.md for every setting.

[workspace]
id = "{id}"
created_by = "syllabus {version}"

[database]
# url = "postgresql://user@host:5432/syllabus"   # default: {db} in this folder

[blobs]
# url = "s3://bucket/prefix"                      # default: {blobs}/ in this folder
# s3_endpoint_url = "http://127.0.0.1:9000"

[store]
gc_grace = "24h"
"""


def init_workspace(folder: Path, *, exist_ok: bool = False) -> Path:
    """Create ``folder/.syllabus`` with ``config.toml`` and an empty blob folder.

    The database is created (at the newest schema) when it is first opened. Returns the
    workspace path. Raises AlreadyExistsError unless ``exist_ok``.
    """
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise InvalidArgumentError(f"cannot create a workspace in {folder}: not a folder")
    ws = folder / WORKSPACE_DIR
    config = ws / CONFIG_FILE
    if config.exists():
        if exist_ok:
            return ws
        raise AlreadyExistsError(f"{ws} is already a Syllabus workspace")
    ws.mkdir(exist_ok=True)
    (ws / BLOBS_DIR).mkdir(exist_ok=True)
    text = _CONFIG_TEMPLATE.format(id=new_id(), version=__version__, db=DB_FILE, blobs=BLOBS_DIR)
    tmp = config.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(config)
    (ws / ".gitignore").write_text("# Syllabus keeps its data here; do not commit it.\n*\n")
    log.debug("initialized workspace %s", ws)
    return ws
