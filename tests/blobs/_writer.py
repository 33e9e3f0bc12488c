"""A writer process for the crash and concurrency tests (run as a script, not collected).

``python _writer.py STORE WORKDIR SEED COUNT`` stores COUNT rounds of content and prints
``<digest> <kind> <seed> <size>`` after each put returned (so the object is durable).
Seeds below 1000 are shared between writers (overlapping content); the rest are private.
Each round: a byte string through put_bytes + flush, a large file through put_file (its
chunks overlap with other writers' files), and a small folder through put_tree.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from syllabus.blobs import BlobStore, LocalBackend

MiB = 1024 * 1024


def data_for(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def big_file(seed: int) -> bytes:
    """Shared prefix (seed 0), then seed-specific middle, then shared suffix (seed 1)."""
    return data_for(0, 6 * MiB) + data_for(seed, 2 * MiB) + data_for(1, 4 * MiB)


def main() -> None:
    store_dir, work, seed, count = (
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    work.mkdir(parents=True, exist_ok=True)
    store = BlobStore(LocalBackend(store_dir))
    rng = random.Random(seed)
    for i in range(count):
        s = rng.randrange(0, 20) if rng.random() < 0.5 else 10_000 * seed + i + 1000
        size = rng.choice([10, 1000, 100_000, 5 * MiB])
        digest = store.put_bytes(data_for(s, size))
        store.flush()
        print(digest, "bytes", s, size, flush=True)
        path = work / f"big-{i}.bin"
        path.write_bytes(big_file(s))
        print(store.put_file(path).digest, "file", s, path.stat().st_size, flush=True)
        path.unlink()
        tree = work / f"tree-{i}"
        for j in range(30):
            (tree / str(j % 3)).mkdir(parents=True, exist_ok=True)
            (tree / str(j % 3) / f"{j}.txt").write_bytes(data_for(s * 100 + j, 1000))
        print(store.put_tree(tree).digest, "tree", s, 30, flush=True)
    store.close()


if __name__ == "__main__":
    main()
