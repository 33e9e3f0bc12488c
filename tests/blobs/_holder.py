"""A writer process for the gc-lock tests (run as a script, not collected).

``python _holder.py STORE HEX [SECONDS]`` stores the bytes ``bytes.fromhex(HEX)`` (a dedup
when they are stored already), prints ``ready <digest> <1 if it was stored already>`` and
keeps the store open until a line arrives on stdin (or for SECONDS when given), then
closes it and prints ``closed``.
"""

from __future__ import annotations

import sys
import time

from syllabus.blobs import BlobStore, LocalBackend, hash_bytes


def main() -> None:
    store = BlobStore(LocalBackend(sys.argv[1]))
    data = bytes.fromhex(sys.argv[2])
    present = bool(store.backend.contains([hash_bytes(data)]))
    digest = store.put_bytes(data)
    store.flush()
    print("ready", digest, int(present), flush=True)
    if len(sys.argv) > 3:
        time.sleep(float(sys.argv[3]))
    else:
        sys.stdin.readline()
    store.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
