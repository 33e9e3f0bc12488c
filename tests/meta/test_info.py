"""info(): what `syllabus info` shows about the database."""

from __future__ import annotations

import sqlalchemy as sa

from syllabus.meta import BlobRef, BlobRefs, ensure_schema, head_revision, info


def test_info_describes_the_database(engine: sa.Engine) -> None:
    empty = info(engine)
    assert empty.revision is None
    assert empty.tables == {}
    ensure_schema(engine)
    BlobRefs(engine).add([BlobRef("a" * 64, "dataset", "dataset_version", "v1")])
    got = info(engine)
    assert got.backend == engine.dialect.name
    assert got.server_version[0].isdigit()
    assert got.revision == got.head == head_revision()
    assert got.tables["blob_refs"] == 1
    assert got.tables["workspace"] == 3
    assert got.size_bytes is not None
    assert got.size_bytes > 0
    assert "***" in got.url or engine.url.password is None
