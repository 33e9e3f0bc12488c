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
