"""Message ids the bot chooses itself: Rocket.Chat's shape (17 characters of its alphabet), drawn
from the system's randomness, every character equally likely to appear."""

from __future__ import annotations

from collections import Counter

from bot.rest.client import _ID_ALPHABET, new_message_id


def test_new_message_ids_have_the_servers_shape_and_use_the_whole_alphabet() -> None:
    ids = [new_message_id() for _ in range(20_000)]
    assert all(len(mid) == 17 and set(mid) <= set(_ID_ALPHABET) for mid in ids)
    assert len(set(ids)) == len(ids)
    # 340,000 characters: each of the 55 expected about 6,180 times (one standard deviation is
    # about 80). A plain modulo of a byte would give the first 36 about 6,640 and the last 19
    # about 5,310.
    counts = Counter("".join(ids))
    assert set(counts) == set(_ID_ALPHABET)
    assert min(counts.values()) > 5_750 and max(counts.values()) < 6_600
