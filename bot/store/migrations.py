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

        -- Meant for the bot's own DMs quoting evidence, to redact them once it is erased; nothing
        -- records into it. Kept: migrations are history, and existing databases have the table.
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
    (
        4,
        """
        -- Blocked users: their new messages are removed on arrival. `rid` is '' for
        -- everywhere, else the one room the block covers.
        CREATE TABLE blocked_user (
            user_id TEXT NOT NULL,
            rid TEXT NOT NULL,
            username TEXT NOT NULL,
            reason TEXT NOT NULL,
            actor TEXT NOT NULL,
            blocked_at TEXT NOT NULL,
            PRIMARY KEY (user_id, rid)
        ) WITHOUT ROWID;
        -- Block-list actions whose REST call kept failing (a server outage): retried later from
        -- the evidence already kept, so an outage does not leave a blocked message standing.
        CREATE TABLE block_retry (
            mid TEXT PRIMARY KEY,
            rid TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL
        ) WITHOUT ROWID;

        -- Purges are persisted jobs with a journal, so a crash or restart resumes where it
        -- stopped. `request` is the validated request (JSON, no message text); `token` is the
        -- confirmation token the preview shows.
        CREATE TABLE purge_job (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('user', 'term')),
            request TEXT NOT NULL,
            actor TEXT NOT NULL,
            token TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('collecting', 'previewed', 'running', 'done', 'cancelled', 'dry_run')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            note TEXT
        );
        CREATE INDEX purge_job_open ON purge_job (state) WHERE state IN ('collecting', 'running');
        -- One row per message the purge selected. `message` holds the wire object only until its
        -- evidence is stored (then NULL: the evidence table is the one copy). States:
        -- selected -> evidence (stored, not yet deleted) -> deleted | failed.
        CREATE TABLE purge_item (
            job_id INTEGER NOT NULL REFERENCES purge_job (id),
            mid TEXT NOT NULL,
            rid TEXT NOT NULL,
            author_id TEXT NOT NULL,
            author_username TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('selected', 'evidence', 'deleted', 'failed')),
            evidence_id INTEGER REFERENCES evidence (id),
            message TEXT,
            PRIMARY KEY (job_id, mid)
        );
        CREATE INDEX purge_item_state ON purge_item (job_id, state, rid);
        -- Rooms a purge touches, and how it deletes there (clean: rooms.cleanHistory; each:
        -- chat.delete message by message).
        CREATE TABLE purge_room (
            job_id INTEGER NOT NULL REFERENCES purge_job (id),
            rid TEXT NOT NULL,
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            method TEXT NOT NULL CHECK (method IN ('clean', 'each')),
            PRIMARY KEY (job_id, rid)
        ) WITHOUT ROWID;
        """,
    ),
    (
        5,
        """
        -- /report. A report is one target (a message, or a user) while it is open; the
        -- `id` is the number reporters and moderators see. Its moderator DMs are an `alert` row
        -- (kind 'report') so they go through the same outbox as keyword alerts.
        CREATE TABLE report (
            id INTEGER PRIMARY KEY,
            target_kind TEXT NOT NULL CHECK (target_kind IN ('message', 'user')),
            target_key TEXT NOT NULL,
            mid TEXT,
            rid TEXT,
            room_name TEXT,
            room_type TEXT,
            author_id TEXT NOT NULL,
            author_username TEXT NOT NULL,
            category TEXT NOT NULL,
            source TEXT NOT NULL,
            native TEXT,
            escalated INTEGER NOT NULL DEFAULT 0,
            alert_id INTEGER REFERENCES alert (id),
            opened_at REAL NOT NULL,
            closed_at REAL,
            outcome TEXT
        );
        -- At most one open report per target: a second reporter joins it (dedupe).
        CREATE UNIQUE INDEX report_open_target ON report (target_key) WHERE closed_at IS NULL;
        CREATE INDEX report_alert ON report (alert_id);
        -- Who reported: distinct reporters count towards escalation; rows also feed the
        -- per-reporter rate limits.
        CREATE TABLE report_reporter (
            report_id INTEGER NOT NULL REFERENCES report (id),
            reporter_id TEXT NOT NULL,
            reporter_username TEXT NOT NULL,
            anonymous INTEGER NOT NULL,
            category TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (report_id, reporter_id)
        ) WITHOUT ROWID;
        CREATE INDEX report_reporter_by ON report_reporter (reporter_id, at);
        -- Small runtime switches set by moderators (/mod dryrun), kept across restarts.
        CREATE TABLE bot_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        6,
        """
        -- Policy announcements. Every change to a policy is a new version; a removal is
        -- a version with `removed` = 1, so the history is kept. `targets` is JSON
        -- ({"rooms": [...], "all_public": bool, "pattern": glob|null}); `source` says whether the
        -- version came from a file in policy.dir (which wins over a command) or from /mod policy.
        CREATE TABLE policy_version (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            text TEXT NOT NULL,
            banner TEXT,
            targets TEXT NOT NULL,
            delete_old INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL CHECK (source IN ('file', 'command')),
            removed INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            PRIMARY KEY (name, version)
        ) WITHOUT ROWID;
        -- Each message the bot posted for a policy version in a room: the policy message's own id
        -- (not the pin's system message). Recorded before it is sent; `retired_at` is set once an
        -- old version's message is unpinned (and deleted if asked) or found gone. Messages not
        -- retired are the current policy messages that purges must keep.
        CREATE TABLE policy_message (
            mid TEXT PRIMARY KEY,
            rid TEXT NOT NULL,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            posted_at REAL NOT NULL,
            retired_at REAL
        ) WITHOUT ROWID;
        CREATE INDEX policy_message_live ON policy_message (rid) WHERE retired_at IS NULL;
        -- The room announcement the bot last set, so it clears only its own banner.
        CREATE TABLE policy_banner (
            rid TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            set_at REAL NOT NULL
        ) WITHOUT ROWID;
        -- Optional (policy.dm_on_join): the policy versions DMed to members who joined a room,
        -- so each member gets each version at most once.
        CREATE TABLE policy_dm (
            username TEXT NOT NULL,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            sent_at REAL NOT NULL,
            PRIMARY KEY (username, name, version)
        ) WITHOUT ROWID;
        """,
    ),
    (
        7,
        """
        -- One hourly digest DM per moderator, its message id chosen before the send (a resend
        -- after a crash is the same message).
        CREATE TABLE alert_digest (
            id INTEGER PRIMARY KEY,
            recipient TEXT NOT NULL,
            dm_mid TEXT NOT NULL,
            created_at REAL NOT NULL,
            sent_at REAL
        );
        CREATE INDEX alert_digest_recipient ON alert_digest (recipient, created_at);
        -- Per-moderator cap on new alert DMs: `sent_at` dates each first send, so the last hour
        -- can be counted; a delivery over the cap is held and later folded into a digest.
        ALTER TABLE alert_delivery ADD COLUMN sent_at REAL;
        ALTER TABLE alert_delivery ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE alert_delivery ADD COLUMN digest_id INTEGER REFERENCES alert_digest (id);
        CREATE INDEX alert_delivery_sent ON alert_delivery (recipient, sent_at);
        """,
    ),
    (
        8,
        """
        -- Strikes: one row per warning, by a moderator or a protection's rule. A strike
        -- counts while younger than sanctions.decay_days and not pardoned; `step` is the ladder
        -- step it brought (warn, mute, kick, notify_admins).
        CREATE TABLE strike (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            username TEXT NOT NULL,
            at REAL NOT NULL,
            source TEXT NOT NULL,
            actor TEXT NOT NULL,
            rid TEXT,
            reason TEXT NOT NULL,
            step TEXT,
            pardoned_at REAL
        );
        CREATE INDEX strike_user ON strike (user_id, at);
        -- Mutes the bot applied, per user and room. `until` NULL: until lifted. A row is written
        -- `pending` before rooms.muteUser and made `active` after it, so a crash in between is
        -- retried at the next start; `active` rows past `until` are lifted by the expiry loop,
        -- also after downtime.
        CREATE TABLE mute (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            username TEXT NOT NULL,
            rid TEXT NOT NULL,
            room_name TEXT,
            since REAL NOT NULL,
            until REAL,
            reason TEXT NOT NULL,
            actor TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'lifted', 'expired', 'failed')),
            ended_at REAL,
            ended_by TEXT
        );
        CREATE UNIQUE INDEX mute_live ON mute (user_id, rid) WHERE state IN ('pending', 'active');
        CREATE INDEX mute_due ON mute (until) WHERE state = 'active';
        -- Rooms the raid protection made read-only; only a moderator lifts that.
        CREATE TABLE room_lock (
            rid TEXT PRIMARY KEY,
            room_name TEXT,
            since REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'locked')),
            reason TEXT NOT NULL
        ) WITHOUT ROWID;
        -- Messages the link protection held for review: the text is in the evidence archive
        -- (`evidence_id`), restored with /mod restore as a repost attributed to the author.
        CREATE TABLE held_message (
            id INTEGER PRIMARY KEY,
            mid TEXT NOT NULL UNIQUE,
            rid TEXT NOT NULL,
            user_id TEXT NOT NULL,
            username TEXT NOT NULL,
            evidence_id INTEGER,
            held_at REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('held', 'restored')),
            restored_mid TEXT,
            restored_by TEXT
        );
        """,
    ),
    (
        9,
        """
        -- One-click buttons of an alert that is not a keyword match (a held message's Restore, a
        -- flood's Unmute): JSON [[label, command], ...], sent with the first DM of each copy.
        ALTER TABLE alert ADD COLUMN actions TEXT;
        """,
    ),
    (
        10,
        """
        -- Room bans the bot applied. `via` says who keeps the user out: `server` (Rocket.Chat 8.3+
        -- has bans) or `watch` (an older server: the bot removed the user and removes them again
        -- whenever they rejoin, while the row is `active`). Lifted rows stay as history.
        CREATE TABLE room_ban (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL,
            username TEXT NOT NULL,
            rid TEXT NOT NULL,
            room_name TEXT,
            room_type TEXT NOT NULL,
            since REAL NOT NULL,
            reason TEXT NOT NULL,
            actor TEXT NOT NULL,
            via TEXT NOT NULL CHECK (via IN ('server', 'watch')),
            state TEXT NOT NULL CHECK (state IN ('active', 'lifted')),
            ended_at REAL,
            ended_by TEXT
        );
        CREATE UNIQUE INDEX room_ban_live ON room_ban (rid, user_id) WHERE state = 'active';
        CREATE INDEX room_ban_name ON room_ban (rid, username) WHERE state = 'active';
        """,
    ),
    (
        11,
        """
        -- Companion-app hook requests accepted within the 300 s window (bot.web.hook): a replay
        -- is refused even after a restart. Pruned once `timestamp` is older than the window.
        CREATE TABLE hook_signature (
            signature TEXT PRIMARY KEY,
            timestamp INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX hook_signature_at ON hook_signature (timestamp);

        -- Case numbers (`rcmod audit export|hold --case N`): one per report, purge or message acted
        -- on (bot.audit.selection.case_key), given when the first record about it is appended and
        -- written into that record's `targets.case` and its evidence's `case_id`.
        CREATE TABLE moderation_case (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            ref TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            UNIQUE (kind, ref)
        );
        """,
    ),
    (
        12,
        """
        -- Retention. Alerts, their incidents and deliveries are deleted once past the evidence
        -- window and finished; these indexes find them by age and by alert without a scan.
        CREATE INDEX alert_last_at ON alert (last_at);
        CREATE INDEX alert_incident_alert ON alert_incident (alert_id);
        CREATE INDEX alert_delivery_digest ON alert_delivery (digest_id) WHERE digest_id IS NOT NULL;
        -- When the room was first missing from a subscription list catch-up read (NULL: it was
        -- in the last one): a cursor goes only after the room has been missing that long.
        ALTER TABLE room_cursor ADD COLUMN missing_since REAL;
        """,
    ),
    (
        13,
        """
        -- Image checks: one row per (message, upload) checked, written with the decision before
        -- anything is done about it and marked done after, so a message handled again (a crash,
        -- a reconnect) neither checks nor acts twice. Hashes and numbers only: never the picture,
        -- never its file name.
        CREATE TABLE image_check (
            id INTEGER PRIMARY KEY,
            mid TEXT NOT NULL,
            file_id TEXT NOT NULL,
            rid TEXT NOT NULL,
            checked_at TEXT NOT NULL,
            sha256 TEXT,
            pdq TEXT,
            score REAL,
            hash_list TEXT,
            refused TEXT,
            verdict TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('checked', 'done')),
            UNIQUE (mid, file_id)
        );
        CREATE INDEX image_check_sha256 ON image_check (sha256) WHERE sha256 IS NOT NULL;

        -- Pictures a moderator allowed (a false positive), by SHA-256: never flagged by score again.
        CREATE TABLE image_allowed (
            sha256 TEXT PRIMARY KEY,
            allowed_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            image_check_id INTEGER
        ) WITHOUT ROWID;

        -- Uploads kept with a message's evidence: hashes always, the bytes (data) only when the
        -- policy keeps them. They follow their evidence row: erased (data NULL) when it is
        -- erased or expires, held when it is held, exported with it.
        CREATE TABLE evidence_file (
            id INTEGER PRIMARY KEY,
            evidence_id INTEGER NOT NULL REFERENCES evidence (id),
            file_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            pdq TEXT,
            size INTEGER,
            data BLOB
        );
        CREATE INDEX evidence_file_evidence ON evidence_file (evidence_id);
        """,
    ),
    (
        14,
        """
        -- Replicas on PostgreSQL (bot.store.leadership): the leader's fencing token. Each new
        -- leader raises `epoch` by one while it holds the leadership lock, and every write
        -- transaction of a leader checks that it is still its own, so a deposed leader's writes are
        -- refused. One row at most, written by the first leader; unused on SQLite (one instance).
        CREATE TABLE leader_epoch (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            epoch INTEGER NOT NULL,
            holder TEXT NOT NULL,
            since REAL NOT NULL
        );
        """,
    ),
    (
        15,
        """
        -- The lists moderators edit in chat (/mod allow, /mod deny), kept in the store rather than
        -- in files of the data folder: a restart on a fresh data folder and a replica taking over
        -- load the same ones (bot.store.lists). `options` is the list's sidecar (TOML; NULL: a
        -- plain notify list); each term says who added it and when.
        CREATE TABLE chat_list (
            name TEXT PRIMARY KEY,
            options TEXT,
            created_at TEXT NOT NULL,
            actor TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE chat_list_term (
            id INTEGER PRIMARY KEY,
            list_name TEXT NOT NULL REFERENCES chat_list (name),
            term TEXT NOT NULL,
            added_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            UNIQUE (list_name, term)
        );
        -- Raised by every change to the two tables above, in the same transaction: an instance
        -- tells cheaply whether the lists it compiled are still the store's. No row yet: the
        -- files of an earlier version's data folder have not been imported.
        CREATE TABLE chat_list_revision (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL
        );
        """,
    ),
]

# Applied in version order wherever an entry sits in the list above.
MIGRATIONS.sort(key=lambda entry: entry[0])
LATEST_VERSION = MIGRATIONS[-1][0]
