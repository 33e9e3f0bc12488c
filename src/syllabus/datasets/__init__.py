"""Data versioning: named datasets with numbered versions of files and folders.

Content lives in the blob store (chunked by content, so a new version stores only what
changed); each version is one metadata row pointing at its manifest. Tabular files carry a
profile (schema and column statistics) so diffs speak of rows and columns, not bytes.
"""

from syllabus.datasets.diff import DatasetDiff, RowDiff, StatChange, TableDiff
from syllabus.datasets.models import (
    AddResult,
    CheckoutReport,
    Dataset,
    DatasetSummary,
    DatasetVersion,
    FileChange,
    PathState,
    Remote,
    StatusReport,
    TransferResult,
    VersionSpec,
)
from syllabus.datasets.profile import ColumnProfile, TableProfile
from syllabus.datasets.service import DatasetService
from syllabus.datasets.sql import SqlDatasetStore
from syllabus.datasets.store import DatasetStore

__all__ = [
    "AddResult",
    "CheckoutReport",
    "ColumnProfile",
    "Dataset",
    "DatasetDiff",
    "DatasetService",
    "DatasetStore",
    "DatasetSummary",
    "DatasetVersion",
    "FileChange",
    "PathState",
    "Remote",
    "RowDiff",
    "SqlDatasetStore",
    "StatChange",
    "StatusReport",
    "TableDiff",
    "TableProfile",
    "TransferResult",
    "VersionSpec",
]
