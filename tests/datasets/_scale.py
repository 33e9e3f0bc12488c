"""Run one data add (and a status) in a fresh process and report its peak heap memory.

Used by ``test_scale.py``: ``python -m tests.datasets._scale WORKSPACE PATH`` adds PATH as
dataset ``big`` to a workspace in WORKSPACE, checks the status of the result, and prints
one JSON line. Peak memory is the largest anonymous resident set (``RssAnon``: the heap,
not the page cache that reading a mapped file shows as resident) sampled every 10 ms.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path


def _rss_anon_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    workspace, path = Path(sys.argv[1]), Path(sys.argv[2])
    workspace.mkdir(parents=True, exist_ok=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_anon_kib())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    from syllabus.blobs.store import open_blob_store
    from syllabus.datasets import DatasetService, SqlDatasetStore
    from syllabus.meta import create_engine, ensure_schema

    engine = create_engine(f"sqlite:///{workspace / 'meta.db'}")
    ensure_schema(engine)
    base = _rss_anon_kib()
    with open_blob_store(str(workspace / "blobs")) as blobs:
        service = DatasetService(
            SqlDatasetStore(engine), blobs, cache_dir=workspace / "cache", user="scale"
        )
        version = service.add("big", path).version
        status = service.status("big", path if path.is_dir() else None)
        files = [
            (e.path, str(e.digest), e.size)
            for e in service.manifest(version).values()
            if e.kind == "file"
        ][:3]
    done.set()
    sampler.join()
    print(
        json.dumps(
            {
                "file_count": version.file_count,
                "size": version.size,
                "clean": status.clean,
                "hashed": status.hashed,
                "first_files": files,
                "base_kib": base,
                "peak_kib": peak[0],
            }
        )
    )


if __name__ == "__main__":
    main()
