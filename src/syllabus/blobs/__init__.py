"""Content-addressed blob storage: the only code that touches object bytes.

Layers, bottom up: :mod:`~syllabus.blobs.digest` (typed BLAKE3 ids),
:mod:`~syllabus.blobs.backend` (the record-level ObjectBackend protocol) with
:mod:`~syllabus.blobs.pack` (the shared pack format) and its implementations
(:class:`LocalBackend`; ``syllabus.blobs.s3.S3Backend``), then :class:`BlobStore` (files,
folders, chunking, compression, verified reads) with :mod:`~syllabus.blobs.manifest`.
"""

from syllabus.blobs.backend import LOOSE_MIN, Flags, ObjectBackend, ObjectInfo, Record
from syllabus.blobs.chunking import CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, WHOLE_MAX
from syllabus.blobs.digest import EMPTY_DIGEST, Digest, hash_bytes
from syllabus.blobs.local import LocalBackend
from syllabus.blobs.maintenance import DiskUsage, GcReport, KindUsage, VerifyReport
from syllabus.blobs.manifest import Manifest, ManifestDiff, ManifestEntry, diff
from syllabus.blobs.reader import BlobReader
from syllabus.blobs.store import BlobStore, FileEntry, IgnoreSpec, Tree, open_blob_store

__all__ = [
    "CHUNK_AVG",
    "CHUNK_MAX",
    "CHUNK_MIN",
    "EMPTY_DIGEST",
    "LOOSE_MIN",
    "WHOLE_MAX",
    "BlobReader",
    "BlobStore",
    "Digest",
    "DiskUsage",
    "FileEntry",
    "Flags",
    "GcReport",
    "IgnoreSpec",
    "KindUsage",
    "LocalBackend",
    "Manifest",
    "ManifestDiff",
    "ManifestEntry",
    "ObjectBackend",
    "ObjectInfo",
    "Record",
    "Tree",
    "VerifyReport",
    "diff",
    "hash_bytes",
    "open_blob_store",
]
