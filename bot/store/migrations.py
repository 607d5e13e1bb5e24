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
    (
        2,
        """
        -- Evidence rows become tombstones instead of disappearing: erasure (retention or a request)
        -- clears `content` but keeps the ids and the SHA-256 the audit log attests. `case_id` links
        -- evidence to a case so a legal hold or an export by case finds it. SQLite cannot relax
        -- NOT NULL in place, so the table is rebuilt. Rows from before this migration have no hash.
        CREATE TABLE evidence_v2 (
            id INTEGER PRIMARY KEY,
            mid TEXT NOT NULL,
            rid TEXT NOT NULL,
            author_id TEXT NOT NULL,
            captured_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            audit_seq INTEGER REFERENCES audit_log (seq),
            content TEXT,
            sha256 TEXT,
            case_id INTEGER,
            erased_at TEXT,
            erased_reason TEXT CHECK (erased_reason IN ('expired', 'erasure')),
            CHECK ((content IS NULL) = (erased_at IS NOT NULL))
        );
        INSERT INTO evidence_v2 (id, mid, rid, author_id, captured_at, expires_at, audit_seq, content)
            SELECT id, mid, rid, author_id, captured_at, expires_at, audit_seq, content FROM evidence;
        DROP TABLE evidence;
        ALTER TABLE evidence_v2 RENAME TO evidence;
        CREATE INDEX evidence_mid ON evidence (mid);
        CREATE INDEX evidence_author ON evidence (author_id);
        CREATE INDEX evidence_expires ON evidence (expires_at) WHERE erased_at IS NULL;
        CREATE INDEX evidence_case ON evidence (case_id) WHERE case_id IS NOT NULL;
        CREATE INDEX legal_hold_active ON legal_hold (kind, ref) WHERE released_at IS NULL;

        -- The bot's own copies of offending text (alert and report DMs quote an excerpt). When the
        -- evidence they quote is erased, the bot edits the DM to drop the excerpt; `redacted_at`
        -- records that it did.
        CREATE TABLE bot_copy (
            id INTEGER PRIMARY KEY,
            rid TEXT NOT NULL,
            mid TEXT NOT NULL,
            audit_seq INTEGER REFERENCES audit_log (seq),
            evidence_id INTEGER REFERENCES evidence (id),
            posted_at TEXT NOT NULL,
            redacted_at TEXT,
            UNIQUE (rid, mid)
        );
        CREATE INDEX bot_copy_evidence ON bot_copy (evidence_id) WHERE redacted_at IS NULL;
        """,
    ),
    (
        3,
        """
        -- Keyword alerts. An alert groups the incidents (list + term found in a message) of one
        -- author, room and list within the coalescing window; `version` goes up with every
        -- incident, and each moderator's delivery is brought up to it (sent, then edited).
        CREATE TABLE alert (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            kind TEXT NOT NULL,
            list TEXT NOT NULL,
            term TEXT NOT NULL,
            severity TEXT NOT NULL,
            categories TEXT NOT NULL,
            rid TEXT NOT NULL,
            room_name TEXT,
            room_type TEXT,
            mid TEXT NOT NULL,
            author_id TEXT NOT NULL,
            author_username TEXT NOT NULL,
            message_ts REAL NOT NULL,
            excerpt TEXT,
            first_at REAL NOT NULL,
            last_at REAL NOT NULL,
            count INTEGER NOT NULL DEFAULT 1,
            version INTEGER NOT NULL DEFAULT 1,
            outcome TEXT
        );
        CREATE INDEX alert_key ON alert (key, last_at);
        -- One row per (message, list, term) ever alerted: an edit that still matches, a catch-up
        -- that re-delivers, or a restart never alerts again.
        CREATE TABLE alert_incident (
            mid TEXT NOT NULL,
            list TEXT NOT NULL,
            term TEXT NOT NULL,
            alert_id INTEGER NOT NULL REFERENCES alert (id),
            PRIMARY KEY (mid, list, term)
        ) WITHOUT ROWID;
        -- The outbox: one delivery per alert and moderator. `dm_mid` is chosen before the first
        -- send, so a resend after a crash is recognised as the same message (exactly once).
        CREATE TABLE alert_delivery (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alert (id),
            recipient TEXT NOT NULL,
            dm_rid TEXT,
            dm_mid TEXT NOT NULL,
            sent_version INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL DEFAULT 0,
            failed TEXT,
            UNIQUE (alert_id, recipient)
        );
        CREATE INDEX alert_delivery_due ON alert_delivery (next_at) WHERE failed IS NULL;
        -- End-to-end encrypted messages cannot be scanned: counted per room, for /mod status.
        CREATE TABLE unscannable_room (
            rid TEXT PRIMARY KEY,
            count INTEGER NOT NULL,
            last_at REAL NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
]

# Applied in version order wherever an entry sits in the list above.
MIGRATIONS.sort(key=lambda entry: entry[0])
LATEST_VERSION = MIGRATIONS[-1][0]
