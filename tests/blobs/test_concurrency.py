"""Several processes and threads writing overlapping content into one store at once."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from syllabus.blobs import BlobStore, Digest, LocalBackend, hash_bytes

from ._writer import data_for
from .test_crash import WRITER, check_object


def test_four_processes_writing_overlapping_content(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(store_dir), str(tmp_path / f"w{i}"), str(i), "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    lines: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines.extend(out.splitlines())
    assert len(lines) == 4 * 3 * 3
    store = BlobStore(LocalBackend(store_dir))
    report = store.verify()
    assert report.ok, report
    for line in lines:
        check_object(store, line)
    assert len(list((store_dir / "packs").glob("*.pack"))) >= 4  # one per writer at least
    store.close()


def test_threads_share_one_store(store: BlobStore) -> None:
    digests: list[set[Digest]] = [set() for _ in range(4)]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                seed = i if i % 2 else 1000 * n + i  # half the content is shared
                digests[n].add(store.put_bytes(data_for(seed, 5000 if i % 5 else 5_000_000)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store.flush()
    every = set().union(*digests)
    assert not store.missing(every)
    fresh = BlobStore(LocalBackend(store.url))
    for digest in every:
        assert hash_bytes(fresh.read_bytes(digest)) == digest
    assert fresh.verify().ok
    fresh.close()
