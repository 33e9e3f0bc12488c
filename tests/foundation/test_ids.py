from __future__ import annotations

import time

from syllabus._utils.ids import id_timestamp_ms, is_id, is_id_prefix, new_id


def test_ids_are_hex_and_strictly_increasing() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert all(is_id(i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_carry_their_time_and_version() -> None:
    before = time.time_ns() // 1_000_000
    id_ = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= id_timestamp_ms(id_) <= after + 5
    assert id_[12] == "7"  # UUID version 7
    assert id_[16] in "89ab"  # RFC 9562 variant


def test_prefixes() -> None:
    assert is_id_prefix("0190ab")
    assert not is_id_prefix("0190a")
    assert not is_id_prefix("0190AG")


def test_abbreviate_tells_close_ids_apart() -> None:
    from syllabus._utils.ids import abbreviate

    ids = [new_id() for _ in range(50)]  # made within a millisecond or two: long common prefixes
    short = abbreviate(ids)
    assert len(set(short.values())) == len(ids)
    for id_, prefix in short.items():
        assert id_.startswith(prefix)
        assert len(prefix) >= 12
        assert [other for other in ids if other.startswith(prefix)] == [id_]
    far = ["0" * 16 + "a" * 16, "f" * 32]
    assert abbreviate(far) == {far[0]: far[0][:12], far[1]: far[1][:12]}
