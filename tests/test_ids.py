"""Public ids: unique, URL-safe, and in creation order (index locality)."""

from __future__ import annotations

import re
import time

from models.base import new_id


def test_ids_are_unique_url_safe_and_in_creation_order() -> None:
    ids = []
    for _ in range(5):
        ids += [new_id("cs") for _ in range(2000)]
        time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"cs_[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)
    # Ids from different milliseconds sort by time (within one they are random).
    firsts = [ids[k * 2000] for k in range(5)]
    assert firsts == sorted(firsts)
    assert new_id("cs") > ids[-1]
