"""The chat-edited lists in the store, on each backend: edits audited in their transaction, the
revision that tells an instance its matcher is stale, and the one-time import of an earlier
version's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.audit import actions
from bot.errors import ConfigError
from bot.store.lists import ChatList, ChatListEdit, ChatTerm, read_file_lists
from tests.backends import Backend
from tests.helpers import Clock


def test_edits_are_kept_audited_and_raise_the_revision(backend: Backend) -> None:
    store = backend.open(Clock(1_800_000_000.0))
    assert store.lists.revision() == 0 and store.lists.lists() == ()
    allow = ChatListEdit("runtime-allow", "casino night", "u-mod1", "allow", 'kind = "allow"\n')
    assert store.lists.add_term(allow)
    assert store.lists.revision() == 1
    assert not store.lists.add_term(allow)  # already there: nothing written
    assert store.lists.revision() == 1
    assert store.lists.add_term(ChatListEdit("runtime", "*spam*", "u-mod2", "deny"))
    assert store.lists.add_term(ChatListEdit("runtime", "casino", "u-mod1", "deny", 'kind = "block"\n'))
    assert store.lists.revision() == 3
    store.close()
    store = backend.open()  # another instance's view: everything is in the store
    (denied, allowed) = store.lists.lists()  # by name
    assert (allowed.name, allowed.options, [t.term for t in allowed.terms]) == (
        "runtime-allow",
        'kind = "allow"\n',
        ["casino night"],
    )
    # A new list's options come with its first term; later terms leave them as they are.
    assert (denied.name, denied.options) == ("runtime", None)
    assert [(t.term, t.actor) for t in denied.terms] == [("*spam*", "u-mod2"), ("casino", "u-mod1")]
    assert allowed.terms[0].added_at.startswith("2027-01-15")
    assert [w.options.kind for w in (allowed.wordlist(), denied.wordlist())] == ["allow", "notify"]
    assert [t.written for t in denied.wordlist().terms] == ["*spam*", "casino"]
    edits = [r for r in store.audit.audit_records() if r.action == actions.LIST_EDITED]
    assert [(r.actor, r.targets["list"], r.reason) for r in edits] == [
        ("u-mod1", "runtime-allow", {"op": "allow", "term": "casino night"}),
        ("u-mod2", "runtime", {"op": "deny", "term": "*spam*"}),
        ("u-mod1", "runtime", {"op": "deny", "term": "casino"}),
    ]
    assert store.audit.verify_audit().ok
    store.close()


def test_files_of_an_earlier_version_are_imported_once(backend: Backend, tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "runtime.txt").write_text("# a comment\ncasino night\n\nfree*\n")
    (folder / "runtime-allow.txt").write_text("casino night out\n")
    (folder / "runtime-allow.toml").write_text('# written by /mod allow\nkind = "allow"\n')
    store = backend.open()
    assert not store.lists.imported()
    assert store.lists.import_once(read_file_lists(folder))
    assert store.lists.imported() and store.lists.revision() == 1
    by_name = {c.name: c for c in store.lists.lists()}
    assert [t.term for t in by_name["runtime"].terms] == ["casino night", "free*"]
    assert by_name["runtime-allow"].options == '# written by /mod allow\nkind = "allow"\n'
    imports = [r.reason for r in store.audit.audit_records() if r.action == actions.LIST_EDITED]
    assert sorted(r["terms"] for r in imports) == [1, 2] and {r["op"] for r in imports} == {"import"}
    # Once: a second start (the files still there, or changed) imports nothing.
    (folder / "runtime.txt").write_text("something else\n")
    assert not store.lists.import_once(read_file_lists(folder))
    assert [t.term for t in store.lists.lists()[0].terms] == ["casino night", "free*"]
    assert store.lists.revision() == 1
    store.close()


def test_a_store_started_without_files_never_imports_them_later(backend: Backend, tmp_path: Path) -> None:
    store = backend.open()
    assert store.lists.import_once(read_file_lists(tmp_path / "no-such-folder"))
    assert store.lists.revision() == 0  # nothing changed: a warm matcher is still current
    store.lists.add_term(ChatListEdit("runtime", "casino", "u1", "deny"))
    assert not store.lists.import_once((ChatList("old", None, (ChatTerm("x", "", ""),)),))
    assert [c.name for c in store.lists.lists()] == ["runtime"]
    store.close()


def test_a_broken_list_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "runtime.txt").write_text("ca*sino\n")
    with pytest.raises(ConfigError, match=r"runtime\.txt:1"):
        read_file_lists(folder)
