"""The reference grammar shared by the API, the CLI and REST.

::

    ref      := name [ "@" selector ]
    name     := segment ( "/" segment )*
    segment  := [A-Za-z0-9] [A-Za-z0-9._-]*          (at most 128 characters in all)
    selector := version | "latest" | stage | alias
    version  := [1-9][0-9]*
    stage    := "development" | "testing" | "staging" | "production" | "archived"
    alias    := [A-Za-z] [A-Za-z0-9_-]*

``churn`` alone means ``churn@latest``. Whether ``churn`` is a dataset or a model is said by
the command or argument, not by the reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from syllabus.errors import InvalidReferenceError

__all__ = ["STAGES", "Ref", "SelectorKind", "Stage", "parse_ref", "validate_name"]


class Stage(StrEnum):
    """Lifecycle stages of a model version, in promotion order."""

    DEVELOPMENT = "development"
    TESTING = "testing"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


STAGES: tuple[str, ...] = tuple(s.value for s in Stage)
MAX_NAME = 128

_SEGMENT_START = re.compile(r"[A-Za-z0-9]")
_SEGMENT_CHAR = re.compile(r"[A-Za-z0-9._-]")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class SelectorKind(StrEnum):
    VERSION = "version"
    LATEST = "latest"
    STAGE = "stage"
    ALIAS = "alias"


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference: a name and what selects one of its versions."""

    name: str
    kind: SelectorKind
    version: int | None = None
    stage: Stage | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.kind is SelectorKind.VERSION:
            return f"{self.name}@{self.version}"
        if self.kind is SelectorKind.STAGE:
            return f"{self.name}@{self.stage}"
        if self.kind is SelectorKind.ALIAS:
            return f"{self.name}@{self.alias}"
        return f"{self.name}@latest"


def _fail(text: str, pos: int, why: str) -> InvalidReferenceError:
    """A one-line error that shows ``text`` with the bad character marked ``>>x<<``."""
    pos = max(0, min(pos, len(text) - 1)) if text else 0
    marked = text[:pos] + ">>" + text[pos : pos + 1] + "<<" + text[pos + 1 :]
    if len(marked) > 100:
        marked = marked[max(0, pos - 40) : pos + 44]
    return InvalidReferenceError(
        f"invalid reference {text!r}: {why} at character {pos + 1} ({marked})"
    )


def _check_name(text: str, name: str) -> None:
    if not name:
        raise _fail(text, 0, "empty name")
    if len(name) > MAX_NAME:
        raise _fail(text, MAX_NAME, f"name longer than {MAX_NAME} characters")
    start = True
    for i, ch in enumerate(name):
        if ch == "/":
            if start:
                raise _fail(text, i, "empty name segment")
            start = True
            continue
        pattern = _SEGMENT_START if start else _SEGMENT_CHAR
        if not pattern.fullmatch(ch):
            what = "a letter or digit" if start else "a letter, digit, '.', '_' or '-'"
            raise _fail(text, i, f"unexpected {ch!r} (expected {what})")
        start = False
    if start:
        raise _fail(text, len(name) - 1, "name ends with '/'")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid object name, else raise InvalidReferenceError."""
    _check_name(name, name)
    return name


def parse_ref(text: str) -> Ref:
    """Parse ``name``, ``name@3``, ``name@latest``, ``name@production`` or ``name@alias``."""
    at = text.find("@")
    if at < 0:
        _check_name(text, text)
        return Ref(text, SelectorKind.LATEST)
    name, selector = text[:at], text[at + 1 :]
    _check_name(text, name)
    base = at + 1
    if not selector:
        raise _fail(text, at, "'@' must be followed by a version, 'latest', a stage or an alias")
    if "@" in selector:
        raise _fail(text, base + selector.index("@"), "a second '@'")
    if selector[0].isdigit():
        for i, ch in enumerate(selector):
            if not ch.isdigit():
                raise _fail(text, base + i, f"unexpected {ch!r} in version number")
        if selector[0] == "0":
            raise _fail(text, base, "versions start at 1")
        return Ref(name, SelectorKind.VERSION, version=int(selector))
    if selector == "latest":
        return Ref(name, SelectorKind.LATEST)
    if selector in STAGES:
        return Ref(name, SelectorKind.STAGE, stage=Stage(selector))
    if not _ALIAS.fullmatch(selector):
        for i, ch in enumerate(selector):
            ok = ch.isalpha() if i == 0 else bool(re.fullmatch(r"[A-Za-z0-9_-]", ch))
            if not ok:
                raise _fail(text, base + i, f"unexpected {ch!r} in alias")
    return Ref(name, SelectorKind.ALIAS, alias=selector)
