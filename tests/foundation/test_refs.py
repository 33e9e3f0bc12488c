from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syllabus.errors import InvalidReferenceError
from syllabus.refs import SelectorKind, Stage, parse_ref, validate_name

names = st.from_regex(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}(/[A-Za-z0-9][A-Za-z0-9._-]{0,10}){0,2}", fullmatch=True
)


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("churn", SelectorKind.LATEST, None),
        ("churn@latest", SelectorKind.LATEST, None),
        ("churn@3", SelectorKind.VERSION, 3),
        ("churn@production", SelectorKind.STAGE, Stage.PRODUCTION),
        ("churn@champion", SelectorKind.ALIAS, "champion"),
        ("team/churn-v2.1@12", SelectorKind.VERSION, 12),
    ],
)
def test_parse_valid(text: str, kind: SelectorKind, expected: object) -> None:
    ref = parse_ref(text)
    assert ref.kind is kind
    value = {
        SelectorKind.VERSION: ref.version,
        SelectorKind.STAGE: ref.stage,
        SelectorKind.ALIAS: ref.alias,
    }.get(kind)
    assert value == expected
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("churn@", 6, "must be followed"),
        ("ch urn@3", 3, "unexpected ' '"),
        ("churn@0", 7, "versions start at 1"),
        ("churn@3x", 8, "in version number"),
        ("churn@cham!pion", 11, "in alias"),
        ("churn@1@2", 8, "a second '@'"),
        ("@3", 1, "empty name"),
        ("/churn", 1, "empty name segment"),
        ("churn/", 6, "ends with '/'"),
        ("-churn", 1, "expected a letter or digit"),
    ],
)
def test_parse_errors_point_at_the_character(text: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_ref(text)
    message = str(info.value)
    assert "\n" not in message
    assert fragment in message
    assert f"at character {position} " in message
    assert ">>" in message


def test_long_names_are_refused() -> None:
    with pytest.raises(InvalidReferenceError, match="longer than 128"):
        validate_name("a" * 129)


@given(
    names,
    st.one_of(st.integers(1, 10**9).map(str), st.sampled_from(["latest", "staging", "champion"])),
)
def test_round_trip(name: str, selector: str) -> None:
    ref = parse_ref(f"{name}@{selector}")
    assert ref.name == name
    assert parse_ref(str(ref)) == ref
