"""Type aliases shared across components."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

__all__ = ["JSONValue", "ProgressCallback", "null_progress"]

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None

ProgressCallback: TypeAlias = Callable[[int, int | None], None]
"""Called as ``progress(advance, total)``: ``advance`` units done since the last call
(bytes or items); ``total`` when known, else None. The library calls it, the CLI draws it."""


def null_progress(advance: int, total: int | None) -> None:
    """A progress callback that does nothing (the default everywhere)."""
