"""Wordlist files: the term format, the TOML sidecar, reading files and folders, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.moderation import (
    ListOptions,
    NormalizeOptions,
    NotifyOptions,
    Term,
    WordlistError,
    load_matcher,
    parse_options,
    parse_terms,
    read_wordlists,
)
from bot.moderation.wordlist import MAX_TERM_CHARS

EXAMPLES = Path(__file__).resolve().parents[2] / "wordlists" / "examples"


def test_terms_comments_blank_lines_and_wildcards() -> None:
    body = "\ufeff# a comment\n\nass\n  spaced   out  phrase \nscam*\n*ing\n*sex*\n   # indented comment\n"
    assert parse_terms(body, "l.txt") == (
        Term("ass", 3),
        Term("spaced out phrase", 4),
        Term("scam", 5, prefix=True),
        Term("ing", 6, suffix=True),
        Term("sex", 7, prefix=True, suffix=True),
    )
    assert [t.written for t in parse_terms(body, "l.txt")] == [
        "ass",
        "spaced out phrase",
        "scam*",
        "*ing",
        "*sex*",
    ]


def test_crlf_lines() -> None:
    assert parse_terms(b"one\r\ntwo\r\n", "l.txt") == (Term("one", 1), Term("two", 2))


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"ok\n*\n", 2, "empty term"),
        (b"ok\n**\n", 2, "empty term"),
        (b"ok\nf*ck\n", 2, "'*' is only allowed at the start or end"),
        (b"ok\nfine\n\xff\xfebad\n", 3, "not valid UTF-8"),
        (("x" * (MAX_TERM_CHARS + 1)).encode(), 1, "longer than"),
    ],
)
def test_bad_terms_name_file_and_line(data: bytes, line: int, reason: str) -> None:
    with pytest.raises(WordlistError) as info:
        parse_terms(data, "lists/l.txt")
    err = info.value
    assert (err.file, err.line) == ("lists/l.txt", line)
    assert reason in err.reason
    assert str(err).startswith(f"lists/l.txt:{line}: ")
    assert isinstance(err, ConfigError)  # the CLI turns it into exit status 2


def test_too_many_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.moderation.wordlist.MAX_TERMS_PER_LIST", 3)
    with pytest.raises(WordlistError, match="more than 3 terms"):
        parse_terms("a\nb\nc\nd\n", "l.txt")


def test_default_options() -> None:
    assert parse_options("", "l") == ListOptions(name="l", source="l.toml")


def test_every_option() -> None:
    text = """
kind = "block"
action = "censor"
severity = "critical"
categories = ["hate", "harassment"]
reveal_term = true
rooms = ["general", "random"]
skip_rooms = ["staff"]

[normalize]
leet = false
confusables = true
separators = false
diacritics = true

[notify]
users = ["mod1"]
roles = ["admin"]
room_moderators = true
room = "mod-alerts"
"""
    opts = parse_options(text, "slurs")
    assert opts.kind == "block" and opts.action == "censor" and opts.severity == "critical"
    assert opts.categories == ("hate", "harassment") and opts.reveal_term
    assert opts.rooms == ("general", "random") and opts.skip_rooms == ("staff",)
    assert opts.normalize == NormalizeOptions(leet=False, separators=False)
    assert opts.notify == NotifyOptions(
        users=("mod1",), roles=("admin",), room_moderators=True, room="mod-alerts"
    )


def test_block_list_defaults_to_delete() -> None:
    assert parse_options('kind = "block"', "l").action == "delete"
    assert parse_options("", "l").action is None


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('kind = "notify"\nseverity = "low"\nbogus = 1\n', 3, "unknown key 'bogus'"),
        ('kind = "shout"\n', 1, "'kind' must be one of notify, block, allow"),
        ('severity = "extreme"\n', 1, "'severity' must be one of"),
        ('categories = ["rude"]\n', 1, "unknown category 'rude'"),
        ('action = "delete"\n', 1, "only applies to block lists"),
        ('reveal_term = "yes"\n', 1, "must be true or false"),
        ("rooms = [1, 2]\n", 1, "must be a list of strings"),
        ("[normalize]\nleet = true\nsmart = true\n", 3, "unknown key 'normalize.smart'"),
        ("[notify]\nroom = 5\n", 2, "'notify.room' must be a string"),
        ("kind = \n", 1, "invalid TOML"),
    ],
)
def test_bad_options_name_file_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(WordlistError) as info:
        parse_options(text, "l", "lists/l.toml")
    assert info.value.file == "lists/l.toml"
    assert info.value.line == line
    assert reason in info.value.reason


def test_read_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("ass\n")
    (tmp_path / "a.toml").write_text('severity = "high"\n')
    (tmp_path / "b.txt").write_text("hell\n")
    (tmp_path / "notes.md").write_text("not a list\n")
    lists = read_wordlists([tmp_path])
    assert [(wl.options.name, wl.options.severity, len(wl.terms)) for wl in lists] == [
        ("a", "high", 1),
        ("b", "medium", 1),
    ]
    assert [wl.options.name for wl in read_wordlists([tmp_path / "b.txt"])] == ["b"]
    # the same file twice (directly and through its folder) is one list
    assert len(read_wordlists([tmp_path / "a.txt", tmp_path])) == 2


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda p: p / "missing.txt", "no such file or folder"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "folder contains no .txt wordlists"),
    ],
)
def test_read_errors(tmp_path: Path, setup: object, reason: str) -> None:
    path = setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(WordlistError, match=reason):
        read_wordlists([path])


def test_sidecar_without_list(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x\n")
    (tmp_path / "orphan.toml").write_text("")
    with pytest.raises(WordlistError, match="options file without a list"):
        read_wordlists([tmp_path])


def test_two_files_with_one_stem(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "l.txt").write_text("a\n")
    (tmp_path / "y" / "l.txt").write_text("b\n")
    with pytest.raises(WordlistError, match="two lists are called 'l'"):
        read_wordlists([tmp_path / "x", tmp_path / "y"])


def test_broken_sidecar_is_reported_with_its_own_path(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("a\n")
    (tmp_path / "l.toml").write_text("kind = 'nope'\n")
    with pytest.raises(WordlistError) as info:
        load_matcher([tmp_path])
    assert info.value.file == str(tmp_path / "l.toml") and info.value.line == 1


def test_shipped_examples_load_and_are_opt_in() -> None:
    matcher = load_matcher([EXAMPLES])
    assert {o.name: o.kind for o in matcher.lists} == {"allow": "allow", "doxxing": "block", "spam": "notify"}
    assert matcher.warnings == ()
    assert [m.list for m in matcher.scan("FREE CRYPT0 now, his phone number is")] == ["spam", "doxxing"]
    # nothing is matched that the admin did not choose: no lists, no matches
    assert load_matcher.__module__ == "bot.moderation.matcher"
    from bot.moderation import compile

    assert compile([]).scan("fuck shit ass") == []
