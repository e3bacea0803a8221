"""The sandbox's SIDs: two letters and 32 hex digits, as Twilio's; the first 12 digits are the
millisecond the SID was made, so that each table's index of SIDs grows at its end."""

from __future__ import annotations

import time

from taskrouter_sandbox.domain.validation import SID_PATTERN, new_sid


def test_a_sid_is_two_letters_and_32_hex_digits_beginning_with_its_millisecond():
    before = time.time_ns() // 1_000_000
    sid = new_sid("WT")
    after = time.time_ns() // 1_000_000
    assert SID_PATTERN.match(sid) and sid.startswith("WT") and len(sid) == 34
    assert before <= int(sid[2:14], 16) <= after


def test_sids_made_one_after_another_are_unique_and_in_time_order():
    sids = [new_sid("EV") for _ in range(20_000)]
    assert len(set(sids)) == len(sids)
    stamps = [sid[2:14] for sid in sids]
    assert stamps == sorted(stamps)
    # The rest is random: the SIDs of one millisecond differ there.
    assert len({sid[14:] for sid in sids}) == len(sids)
