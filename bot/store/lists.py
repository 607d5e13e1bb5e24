"""The lists moderators edit in chat (``/mod allow``, ``/mod deny``): shared state of every instance.

They used to be files in ``<data_dir>/lists/``, which a replica's data folder (or a replaced pod's)
does not have: an edit made on one instance was lost on a failover. Here each list is a row (its
name and its sidecar's options) and each term a row (who added it, when); every change raises one
revision counter in the same transaction, so an instance compares one integer to know whether
the lists it compiled are still the store's (a new leader at takeover, above all).

Each change is audited in the transaction that makes it (``list.edited``, with the op and the
term as ``/mod allow`` and ``/mod deny`` always recorded them), so the list and its audit trail
cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.audit import actions
from bot.moderation import Wordlist, parse_wordlist, read_wordlists
from bot.store.audit import AuditLog
from bot.store.db import Database, translates

__all__ = ["ChatList", "ChatListEdit", "ChatLists", "ChatTerm", "read_file_lists"]


@dataclass(frozen=True, slots=True)
class ChatTerm:
    term: str  # as a wordlist line writes it (a leading or trailing ``*`` is a wildcard)
    actor: str
    added_at: str

    def __repr__(self) -> str:  # terms are moderators' words; logs name lists, not terms
        return f"ChatTerm(actor={self.actor!r}, added_at={self.added_at!r})"


@dataclass(frozen=True, slots=True)
class ChatList:
    name: str
    options: str | None  # the sidecar's TOML; None: a plain notify list
    terms: tuple[ChatTerm, ...]

    def wordlist(self) -> Wordlist:
        """The list as the matcher reads it; WordlistError names the list when it is unusable."""
        where = f"store (chat-edited list {self.name})"
        body = "\n".join(t.term for t in self.terms)
        return parse_wordlist(self.name, body, self.options, file=where, options_file=where)


@dataclass(frozen=True, slots=True)
class ChatListEdit:
    """One term added to one list by a moderator; ``options`` is used when the list is new."""

    name: str
    term: str
    actor: str
    op: str  # "allow" or "deny", as the audit record says
    options: str | None = None


class ChatLists:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self._db = db
        self._audit = audit

    @translates("reading the chat-edited lists")
    def revision(self) -> int:
        """Changes whenever a list or a term is added (0: nothing ever written)."""
        row = self._db.execute("SELECT revision FROM chat_list_revision WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    @translates("reading the chat-edited lists")
    def imported(self) -> bool:
        """Whether the files of an earlier version's data folder were imported (import_once)."""
        return self._db.execute("SELECT 1 FROM chat_list_revision WHERE id = 1").fetchone() is not None

    @translates("reading the chat-edited lists")
    def lists(self) -> tuple[ChatList, ...]:
        """Every list with its terms, lists by name and terms in the order they were added."""
        terms: dict[str, list[ChatTerm]] = {}
        for name, term, actor, added_at in self._db.execute(
            "SELECT list_name, term, actor, added_at FROM chat_list_term ORDER BY id"
        ):
            terms.setdefault(str(name), []).append(ChatTerm(str(term), str(actor), str(added_at)))
        return tuple(
            ChatList(str(name), None if options is None else str(options), tuple(terms.get(str(name), ())))
            for name, options in self._db.execute("SELECT name, options FROM chat_list ORDER BY name")
        )

    @translates("reading the chat-edited lists")
    def has_term(self, name: str, term: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM chat_list_term WHERE list_name = ? AND term = ?", (name, term)
        ).fetchone()
        return row is not None

    def add_term(self, edit: ChatListEdit) -> bool:
        """Add the term (and its list, when new) with its audit record, in one transaction; False
        when the list already held it (nothing written)."""
        with self._db.transaction():
            if self.has_term(edit.name, edit.term):
                return False
            self._add(edit.name, edit.options, [edit.term], edit.actor)
            self._audit.append_audit(
                actor=edit.actor,
                action=actions.LIST_EDITED,
                targets={"list": edit.name},
                reason={"op": edit.op, "term": edit.term},
            )
            self._bump()
        return True

    def import_once(self, lists: Sequence[ChatList], *, actor: str = "operator") -> bool:
        """The lists an earlier version kept as files, written into a store that has never held
        any (True), or nothing at all when the store already has them (False): from the first
        start on, the store is where they live. Each imported list is audited as one edit."""
        with self._db.transaction():
            if self.imported():
                return False
            self._db.execute("INSERT INTO chat_list_revision (id, revision) VALUES (1, 0)")
            for chat in lists:
                self._add(chat.name, chat.options, [t.term for t in chat.terms], actor)
                self._audit.append_audit(
                    actor=actor,
                    action=actions.LIST_EDITED,
                    targets={"list": chat.name},
                    reason={"op": "import", "terms": len(chat.terms)},
                )
            if lists:
                self._bump()
        return True

    def _add(self, name: str, options: str | None, terms: Sequence[str], actor: str) -> None:
        now = self._db.now_iso()
        self._db.execute(
            "INSERT OR IGNORE INTO chat_list (name, options, created_at, actor) VALUES (?, ?, ?, ?)",
            (name, options, now, actor),
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO chat_list_term (list_name, term, added_at, actor) VALUES (?, ?, ?, ?)",
            [(name, term, now, actor) for term in terms],
        )

    def _bump(self) -> None:
        self._db.execute(
            "INSERT INTO chat_list_revision (id, revision) VALUES (1, 1) "
            "ON CONFLICT (id) DO UPDATE SET revision = revision + 1"
        )


def read_file_lists(folder: Path) -> tuple[ChatList, ...]:
    """The chat-edited lists an earlier version wrote as files in ``folder`` (none: no folder).
    WordlistError (a ConfigError) on a broken one, as when it was loaded from there."""
    if not folder.is_dir() or not any(folder.glob("*.txt")):
        return ()
    found = []
    for wordlist in read_wordlists([folder]):
        name = wordlist.options.name
        sidecar = folder / f"{name}.toml"
        options = sidecar.read_text(encoding="utf-8") if sidecar.is_file() else None
        terms = tuple(ChatTerm(t.written, actor="", added_at="") for t in wordlist.terms)
        found.append(ChatList(name, options, terms))
    return tuple(found)
