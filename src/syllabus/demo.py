"""The end-to-end demo behind ``make demo`` and ``syllabus demo``.

It runs on an embedded workspace in a folder of its own and reports each step as a
:class:`DemoStep`; the CLI prints them. Today it shows the foundation: a workspace, the
content-addressed blob store with chunk-level deduplication, verified checkout, fsck, du
and gc. Each component extends it as it lands.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from syllabus.blobs.manifest import diff
from syllabus.client import Client, init_workspace

__all__ = ["DemoStep", "run_demo"]

_BIG = 48 * 1024 * 1024
_SMALL_FILES = 2_000


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo: a title, what it found, and how long it took."""

    title: str
    facts: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0


def _make_dataset(folder: Path, rng: random.Random) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "features.bin").write_bytes(rng.randbytes(_BIG))
    for i in range(_SMALL_FILES):
        (folder / "images" / f"img_{i:05d}.txt").write_bytes(rng.randbytes(1024))
    rows = ["id,age,region,label"]
    rows += [
        f"{i},{rng.randint(18, 90)},{rng.choice('NSEW')},{rng.randint(0, 1)}" for i in range(20_000)
    ]
    (folder / "table.csv").write_text("\n".join(rows) + "\n")


def _edit_dataset(folder: Path, rng: random.Random) -> None:
    big = folder / "features.bin"
    data = bytearray(big.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 1024 * 1024] = rng.randbytes(1024 * 1024)  # overwrite 1 MiB
    data[4096:4096] = rng.randbytes(100)  # insert 100 bytes near the start
    big.write_bytes(bytes(data))
    for i in range(10):
        (folder / "images" / f"img_{i:05d}.txt").write_bytes(rng.randbytes(1024))
    (folder / "images" / "img_new.txt").write_bytes(rng.randbytes(1024))


def run_demo(
    folder: Path, *, progress: Callable[[int, int | None], None] | None = None
) -> Iterator[DemoStep]:
    """Run the demo in ``folder`` (created; must be empty), yielding each step as it ends."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        from syllabus.errors import InvalidArgumentError

        raise InvalidArgumentError(f"the demo needs an empty folder; {folder} is not empty")
    rng = random.Random(20261127)  # noqa: S311 - reproducible demo data, not secrets
    tick = time.perf_counter()

    def step(title: str, **facts: object) -> DemoStep:
        nonlocal tick
        now = time.perf_counter()
        out = DemoStep(title, facts, now - tick)
        tick = now
        return out

    ws = init_workspace(folder)
    client = Client(ws)
    try:
        revision = client.open()
        yield step("Created a workspace", workspace=str(ws), schema=revision)

        data = folder / "data"
        _make_dataset(data, rng)
        yield step("Generated a dataset", files=_SMALL_FILES + 2, bytes=_BIG + _SMALL_FILES * 1024)

        store = client.blobs
        before = store.du().total.stored_bytes
        v1 = store.put_tree(data, progress=progress or (lambda _a, _t: None))
        after_v1 = store.du().total.stored_bytes
        yield step(
            "Stored version 1",
            tree=v1.digest.short,
            files=len(v1.manifest),
            stored_bytes=after_v1 - before,
        )

        _edit_dataset(data, rng)
        v2 = store.put_tree(data, progress=progress or (lambda _a, _t: None))
        after_v2 = store.du().total.stored_bytes
        changes = diff(v1.manifest, v2.manifest)
        growth = after_v2 - after_v1
        yield step(
            "Stored version 2 (1 MiB overwritten and 100 bytes inserted in features.bin, "
            "11 small files changed or added)",
            tree=v2.digest.short,
            added=len(changes.added),
            modified=len(changes.modified),
            removed=len(changes.removed),
            new_stored_bytes=growth,
            growth_percent=round(100 * growth / max(1, after_v1 - before), 2),
        )

        checkout = folder / "checkout-v1"
        store.materialize(v1.digest, checkout)
        again = store.put_tree(checkout)
        yield step(
            "Checked out version 1", folder=str(checkout), identical=again.digest == v1.digest
        )

        report = client.fsck()
        yield step("fsck", records=report.records_checked, ok=report.ok)

        usage = store.du()
        yield step(
            "du",
            records=usage.total.count,
            stored_bytes=usage.total.stored_bytes,
            content_bytes=usage.total.logical_bytes,
        )

        dry = client.gc(dry_run=True, grace_seconds=0)
        yield step(
            "gc (dry run)",
            unreferenced=dry.blobs.count,
            note="no dataset references these blobs yet: data versioning arrives next",
        )
    finally:
        client.close()
