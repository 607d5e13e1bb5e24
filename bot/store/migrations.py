"""Numbered schema migrations. Append new ones; never edit one that has shipped.

Each entry upgrades the schema from ``version - 1`` to ``version`` inside one transaction. The
store refuses to open a database whose version is newer than the last entry here, so an old
binary cannot corrupt data written by a newer one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        -- Messages already handled, by (id, revision); revision is editedAt or '' when never edited.
        -- It is what makes "handled once" survive reconnects and restarts.
        CREATE TABLE handled_message (
            mid TEXT NOT NULL,
            version TEXT NOT NULL,
            rid TEXT NOT NULL,
            handled_at REAL NOT NULL,
            PRIMARY KEY (mid, version)
        ) WITHOUT ROWID;
        CREATE INDEX handled_message_at ON handled_message (handled_at);

        -- Per room: the newest _updatedAt handled, where catch-up after an outage starts.
        CREATE TABLE room_cursor (
            rid TEXT PRIMARY KEY,
            updated_ms INTEGER NOT NULL
        ) WITHOUT ROWID;

        -- Append-only, hash-chained audit log (each record carries the hash of the one before).
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            targets TEXT NOT NULL,
            reason TEXT NOT NULL,
            outcome TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        -- The newest record's seq and hash, written in the same transaction as the record, so
        -- cutting records off the end of the log is detected too.
        CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL
        );

        -- Evidence archive: a message as it was, stored before it is deleted or when reported.
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            mid TEXT NOT NULL,
            rid TEXT NOT NULL,
            author_id TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            audit_seq INTEGER REFERENCES audit_log (seq),
            content TEXT NOT NULL
        );
        CREATE INDEX evidence_mid ON evidence (mid);
        CREATE INDEX evidence_author ON evidence (author_id);
        CREATE INDEX evidence_expires ON evidence (expires_at);

        -- Legal holds keep evidence past its expiry until released.
        CREATE TABLE legal_hold (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('user', 'case')),
            ref TEXT NOT NULL,
            placed_at TEXT NOT NULL,
            released_at TEXT,
            UNIQUE (kind, ref, placed_at)
        );

        -- One bot instance per data folder: the holder renews its lease; a stale one can be taken.
        CREATE TABLE lease (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]
