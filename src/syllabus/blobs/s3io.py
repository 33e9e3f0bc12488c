"""One S3 bucket prefix as plain objects: keys, requests and one-line errors.

:class:`S3Objects` is what :mod:`syllabus.blobs.s3` (records in packs and loose objects)
and its named refs are built on: it turns every boto3 failure into a
:class:`~syllabus.errors.StorageError` a user can act on (no credentials, endpoint
unreachable, bucket missing, access denied) and a missing key into
:class:`MissingObjectError` for the caller to handle.

boto3 is imported only when a client is made, so the core install works without the
``[s3]`` extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

from syllabus.errors import ConfigError, InvalidArgumentError, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import DeleteObjectsOutputTypeDef

__all__ = ["MissingObjectError", "S3Objects", "make_client", "one_line", "parse_s3_url"]

T = TypeVar("T")

DELETE_BATCH: Final = 1000  # the S3 DeleteObjects limit
MISSING_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "403",
        "Forbidden",
    }
)


class MissingObjectError(Exception):
    """The S3 key does not exist (a 404 on GET or HEAD)."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """``("bucket", "prefix")`` from ``s3://bucket/prefix`` (the prefix may be empty)."""
    if not url.startswith("s3://"):
        raise InvalidArgumentError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidArgumentError(f"S3 URL {url!r} names no bucket (expected s3://bucket/prefix)")
    return bucket, prefix.strip("/")


def _import_boto3() -> tuple[ModuleType, ModuleType]:
    try:
        import boto3
        import botocore.config
    except ImportError:
        raise ConfigError(
            "S3 blob storage needs boto3, which is not installed: pip install 'syllabus[s3]'"
        ) from None
    return boto3, botocore.config


def _botocore_exceptions() -> ModuleType:
    import botocore.exceptions

    return botocore.exceptions


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def make_client(endpoint_url: str | None, *, workers: int) -> S3Client:
    """A boto3 S3 client with a connection pool sized for ``workers`` concurrent requests."""
    boto3, config = _import_boto3()
    cfg = config.Config(
        max_pool_connections=max(64, 8 * workers),
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
    )
    try:
        client: S3Client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, config=cfg
        )
    except ValueError as exc:  # botocore rejects a malformed endpoint URL this way
        raise ConfigError(f"invalid S3 endpoint URL {endpoint_url!r}: {one_line(exc)}") from None
    except _botocore_exceptions().BotoCoreError as exc:
        raise ConfigError(f"cannot set up S3 access: {one_line(exc)}") from None
    return client


class S3Objects:
    """Objects under ``s3://bucket/prefix``; every method takes keys relative to the prefix
    except where it says otherwise. Safe to share between threads (boto3 clients are)."""

    def __init__(self, bucket: str, prefix: str, client: S3Client) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.endpoint = str(client.meta.endpoint_url)

    def key(self, rel: str) -> str:
        """The full key of ``rel``."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def where(self, key: str) -> str:
        """``s3://bucket/key`` of a full key (for messages)."""
        return f"s3://{self.bucket}/{key}"

    def call(self, action: str, key: str, fn: Callable[[], T]) -> T:
        """Run one S3 request, mapping failures to one-line :class:`StorageError` messages.

        A missing key raises :class:`MissingObjectError` for the caller to handle.
        """
        errors = _botocore_exceptions()
        try:
            return fn()
        except errors.ClientError as exc:
            self._raise_client_error(action, key, exc)
        except (errors.NoCredentialsError, errors.PartialCredentialsError):
            raise StorageError(
                f"no usable AWS credentials to {action} {self.where(key)}: set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            ) from None
        except (errors.EndpointConnectionError, errors.ConnectionError):
            raise StorageError(
                f"cannot reach the S3 endpoint {self.endpoint} to {action} "
                f"{self.where(key)}; check the endpoint URL (SYLLABUS_S3_ENDPOINT_URL) "
                "and the network"
            ) from None
        except errors.BotoCoreError as exc:
            raise StorageError(
                f"S3 failed to {action} {self.where(key)}: {one_line(exc)}"
            ) from None

    def _raise_client_error(self, action: str, key: str, exc: Any) -> NoReturn:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = one_line(error.get("Message", "") or code)
        where = self.where(key)
        if code in MISSING_CODES:
            raise MissingObjectError(key) from None
        if code == "NoSuchBucket":
            raise StorageError(
                f"S3 bucket {self.bucket!r} does not exist at {self.endpoint}; create it "
                "or fix the blobs URL"
            ) from None
        if code in _DENIED_CODES:
            raise StorageError(
                f"S3 denied access to {action} {where} ({code}: {message}); check the AWS "
                "credentials and the bucket policy"
            ) from None
        raise StorageError(f"S3 failed to {action} {where}: {code}: {message}") from None

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """The bytes of the full ``key``, or bytes ``[start, end)`` of it; raises
        :class:`MissingObjectError`."""

        def request() -> bytes:
            if byte_range is None:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            else:
                start, end = byte_range
                response = self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
                )
            return response["Body"].read()

        data = self.call("read", key, request)
        if byte_range is not None and len(data) != byte_range[1] - byte_range[0]:
            raise StorageError(
                f"{self.where(key)} is truncated: asked for bytes "
                f"{byte_range[0]}-{byte_range[1] - 1}, got {len(data)}"
            )
        return data

    def put(self, key: str, data: bytes) -> None:
        """Write the full ``key`` in one PUT (atomic: readers see all of it or nothing)."""
        self.call(
            "write", key, lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        )

    def head_size(self, key: str) -> int | None:
        """The size of the full ``key`` (None when it does not exist)."""
        try:
            response = self.call(
                "look up", key, lambda: self.client.head_object(Bucket=self.bucket, Key=key)
            )
        except MissingObjectError:
            return None
        return int(response["ContentLength"])

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete full keys (missing ones are no error)."""
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]

            def request(batch: Sequence[str] = batch) -> DeleteObjectsOutputTypeDef:
                return self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )

            response = self.call("delete", batch[0], request)
            failed = [e for e in response.get("Errors", []) if e.get("Code") not in MISSING_CODES]
            if failed:
                first = failed[0]
                raise StorageError(
                    f"S3 failed to delete {self.where(str(first.get('Key')))}: "
                    f"{first.get('Code')}: {one_line(first.get('Message', ''))}"
                    + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
                )

    def list(self, rel: str, *, start_after: str | None = None) -> Iterator[tuple[str, int, float]]:
        """``(key relative to rel, size, mtime)`` of the objects under ``rel`` (relative to
        the prefix). With ``start_after``, only keys sorting after ``rel + start_after``."""
        base = self.key(rel)
        paginator = self.client.get_paginator("list_objects_v2")
        if start_after is None:
            pager = paginator.paginate(Bucket=self.bucket, Prefix=base)
        else:
            pager = paginator.paginate(
                Bucket=self.bucket, Prefix=base, StartAfter=base + start_after
            )
        pages = iter(pager)
        while True:
            page = self.call("list", base, lambda: next(pages, None))
            if page is None:
                return
            for obj in page.get("Contents", []):
                key = obj["Key"]
                yield key[len(base) :], obj.get("Size", 0), obj["LastModified"].timestamp()
