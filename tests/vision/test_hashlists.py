"""Known-bad hash lists: what a list file may hold, how a bad one is reported, and what
matches (an exact copy by SHA-256; a resized, re-encoded copy by PDQ; nothing unrelated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.errors import ConfigError
from bot.models import HashMatch
from bot.vision import decode_image, load_hash_list, match_lists, pdq, sha256
from bot.vision.hashlists import PDQ_MAX_DISTANCE, parse_hash_list
from tests.vision.images import encode, shapes

A = "a" * 64
B = "0123456789abcdef" * 4


def pdq_of(data: bytes) -> str:
    found, _quality = pdq(decode_image(data, max_bytes=50_000_000).image)
    assert found is not None
    return found


def distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def test_comments_blank_lines_and_threatexchange_rows_are_read(tmp_path: Path) -> None:
    listed = tmp_path / "partner-pdq.txt"
    rows = ["\ufeff# exported 2026-01-01", "", f"{A},100", f"{B.upper()},87,a/b, c.jpg", f"  {A} "]
    listed.write_text("\n".join(rows) + "\n")
    hashes = load_hash_list(listed, "pdq")
    assert (hashes.name, hashes.kind, hashes.size, hashes.max_distance) == ("partner-pdq", "pdq", 2, 31)
    assert hashes.match("", B) == HashMatch("partner-pdq", "pdq", 0)
    assert PDQ_MAX_DISTANCE == 31  # Meta's recommended starting threshold


def test_bad_lines_are_named_by_number_without_their_text(tmp_path: Path) -> None:
    listed = tmp_path / "bad.txt"
    rows = [A, "secret-looking-junk", A + "0", f"{A},high", f"{A},101", "# fine"] + ["zz"] * 10
    listed.write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_hash_list(listed, "pdq")
    message = str(caught.value)
    assert str(listed) in message and "14 bad line(s)" in message
    assert "line 2:" in message and "line 3:" in message and "line 4:" in message and "line 5:" in message
    assert "line 1:" not in message and "line 6:" not in message and "(and 9 more)" in message
    assert "secret-looking-junk" not in message


def test_a_sha256_list_holds_bare_hashes_and_matches_exactly() -> None:
    with pytest.raises(ConfigError, match="line 1"):
        parse_hash_list(f"{A},100\n", name="x", kind="sha256")
    with pytest.raises(ConfigError, match="max_distance must be 0"):
        parse_hash_list(A, name="x", kind="sha256", max_distance=5)
    data = b"known bad bytes"
    listed = parse_hash_list(f"{sha256(data).upper()}\n", name="ncmec", kind="sha256")
    assert match_lists([listed], sha256(data), None) == HashMatch("ncmec", "sha256", 0)
    assert match_lists([listed], sha256(data + b"!"), None) is None


@pytest.mark.parametrize(
    ("kind", "max_distance", "complaint"),
    [("md5", None, "kind must be"), ("pdq", 65, "outside 0..64"), ("pdq", -1, "outside 0..64")],
)
def test_bad_settings_are_config_errors(kind: str, max_distance: int | None, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_hash_list(A, name="x", kind=kind, max_distance=max_distance)


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_hash_list(tmp_path / "missing.txt", "sha256")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_hash_list(latin, "sha256")


def test_a_resized_reencoded_copy_matches_and_an_unrelated_picture_does_not() -> None:
    original = shapes(1024, 768, seed=11)
    listed_hash = pdq_of(encode(original, "PNG"))
    copy = encode(original.resize((500, 375)), "JPEG", quality=70)
    unrelated = encode(shapes(1024, 768, seed=12), "PNG")
    listed = parse_hash_list(f"{B}\n{listed_hash},100\n", name="known", kind="pdq")

    near = listed.match(sha256(copy), pdq_of(copy))
    assert near is not None and near.list_name == "known" and near.kind == "pdq"
    assert near.distance == distance(listed_hash, pdq_of(copy)) <= PDQ_MAX_DISTANCE
    assert listed.match(sha256(unrelated), pdq_of(unrelated)) is None
    assert distance(listed_hash, pdq_of(unrelated)) > 64  # unrelated hashes sit near 128 apart


def test_the_nearest_hash_and_the_exact_list_win() -> None:
    rng = np.random.default_rng(1)
    query = rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()
    flipped = [int(query, 16) ^ ((1 << n) - 1) for n in (3, 9, 20)]  # 3, 9 and 20 bits away
    far = parse_hash_list("\n".join(f"{h:064x}" for h in flipped[1:]), name="far", kind="pdq")
    near = parse_hash_list(f"{flipped[0]:064x}", name="near", kind="pdq")
    assert far.match("", query) == HashMatch("far", "pdq", 9)
    assert match_lists([far, near], "", query) == HashMatch("near", "pdq", 3)
    tight = parse_hash_list(f"{flipped[1]:064x}", name="tight", kind="pdq", max_distance=8)
    assert tight.match("", query) is None
    exact = parse_hash_list(sha256(b"x"), name="exact", kind="sha256")
    assert match_lists([near, exact], sha256(b"x"), query) == HashMatch("exact", "sha256", 0)
    assert match_lists([far], "", None) is None  # a flat picture has no PDQ to match
    assert parse_hash_list("# none yet\n", name="empty", kind="pdq").match("", query) is None
