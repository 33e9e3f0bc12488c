"""Typed content ids: BLAKE3-256, shown as 64 lowercase hex characters."""

from __future__ import annotations

from typing import Final

import blake3

from syllabus.errors import InvalidArgumentError

__all__ = ["DIGEST_SIZE", "EMPTY_DIGEST", "Digest", "hash_bytes", "hasher"]

DIGEST_SIZE: Final = 32
_HEX_DIGITS: Final = "0123456789abcdef"


class Digest(str):
    """A BLAKE3 content id. A ``str`` subclass so it drops into SQL, JSON and f-strings.

    Build one with :meth:`parse` (validates text), :meth:`from_bytes` (32 raw bytes) or
    :func:`hash_bytes`; ``Digest("...")`` itself validates too.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if type(value) is cls:
            return value
        # strip() with a character set removes hex digits from both ends: an empty result
        # means every character is one (a C loop, cheaper than a regex match per id).
        if type(value) is str and len(value) == 64 and not value.strip(_HEX_DIGITS):
            return str.__new__(cls, value)  # the usual case, without the calls below
        if not isinstance(value, str) or len(value) != 64 or value.strip(_HEX_DIGITS):
            shown = value if isinstance(value, str) else type(value).__name__
            raise InvalidArgumentError(f"invalid content id {shown!r} (expected 64 hex characters)")
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, value: str) -> Digest:
        return cls(value.strip().lower())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Digest:
        if len(raw) != DIGEST_SIZE:
            raise InvalidArgumentError(f"a content id is {DIGEST_SIZE} bytes, got {len(raw)}")
        return str.__new__(cls, raw.hex())

    def to_bytes(self) -> bytes:
        return bytes.fromhex(self)

    @property
    def short(self) -> str:
        """The first 12 hex characters, for display."""
        return self[:12]

    def fanout(self) -> tuple[str, str]:
        """``("ab", "cdef...")``: the two-level path used by loose objects."""
        return self[:2], self[2:]

    def __repr__(self) -> str:
        return f"Digest({str(self)!r})"


def hasher() -> blake3.blake3:
    """A fresh incremental BLAKE3 hasher."""
    return blake3.blake3()


def hash_bytes(data: bytes | bytearray | memoryview) -> Digest:
    """The content id of ``data``."""
    return Digest.from_bytes(blake3.blake3(data).digest())


EMPTY_DIGEST: Final = hash_bytes(b"")
