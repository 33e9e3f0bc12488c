"""Crash safety: a writer killed with SIGKILL mid-put leaves a consistent store."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syllabus.blobs import BlobStore, Digest, LocalBackend

from ._writer import big_file, data_for

WRITER = Path(__file__).with_name("_writer.py")


def check_object(store: BlobStore, line: str) -> None:
    text, kind, seed, size = line.split()
    digest = Digest(text)
    if kind == "bytes":
        assert store.read_bytes(digest) == data_for(int(seed), int(size))
    elif kind == "file":
        assert store.read_bytes(digest) == big_file(int(seed))
    else:
        manifest = store.get_manifest(digest)
        assert len(manifest) == int(size)
        for entry in manifest.values():
            assert store.read_bytes(entry.digest) == data_for(
                int(seed) * 100 + int(entry.path.split("/")[1][:-4]), 1000
            )


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.041])
def test_sigkill_mid_put_leaves_a_consistent_store(tmp_path: Path, delay: float) -> None:
    store_dir = tmp_path / "store"
    done: list[str] = []
    for round_ in range(2):  # the second writer is killed on top of the first one's debris
        proc = subprocess.Popen(
            [
                sys.executable,
                str(WRITER),
                str(store_dir),
                str(tmp_path / f"w{round_}"),
                str(round_ + 1),
                "1000",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for _ in range(4 + round_):
            line = proc.stdout.readline()
            assert line, "writer died early"
            done.append(line)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        done.extend(line for line in rest.splitlines() if line)  # printed before the kill
        assert proc.returncode == -signal.SIGKILL

    store = BlobStore(LocalBackend(store_dir))
    report = store.verify()
    assert report.ok, report
    for line in done:
        check_object(store, line)
    after = store.put_bytes(b"life goes on")
    store.flush()
    assert store.read_bytes(after) == b"life goes on"
    assert isinstance(store.backend, LocalBackend)
    store.backend.repack()  # drops bytes the killed writers never indexed
    assert store.verify().ok
    for line in done:
        check_object(store, line)
    store.close()
