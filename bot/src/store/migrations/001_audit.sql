-- The audit log: append-only, each row carrying the SHA-256 of the row
-- before it, so an edited or deleted row breaks the chain.
CREATE TABLE audit_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,             -- RFC 3339, UTC
    kind          TEXT NOT NULL,             -- question, answer, declined, refused, exported, redacted, …
    school        TEXT NOT NULL DEFAULT '',
    asker         TEXT NOT NULL DEFAULT '',  -- who asked: staff id, or the address of an unknown sender
    channel       TEXT NOT NULL DEFAULT '',  -- cli, matrix, email, dashboard
    reference     TEXT NOT NULL DEFAULT '',  -- the channel's message id; for an answer, its question's event id
    question      TEXT,                      -- NULL once redacted under the retention period
    question_hash TEXT NOT NULL DEFAULT '',  -- SHA-256 of the question, kept after redaction
    payload       TEXT NOT NULL DEFAULT '{}',-- JSON details: verdict, cited clauses and versions, …
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_school_at ON audit_events (school, at);
CREATE INDEX audit_events_kind ON audit_events (kind);

-- The chain's head, written in the same transaction as each event, so
-- deleting the newest events is noticed too.
CREATE TABLE audit_head (
    one       INTEGER PRIMARY KEY CHECK (one = 1),
    last_id   INTEGER NOT NULL,
    last_hash TEXT NOT NULL
);

-- Rows are never deleted, and the only change allowed is redacting a
-- question's text (its hash stays, so the chain still verifies).
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_events_only_redact BEFORE UPDATE ON audit_events
WHEN NOT (
    NEW.question IS NULL
    AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.kind = OLD.kind AND NEW.school = OLD.school
    AND NEW.asker = OLD.asker AND NEW.channel = OLD.channel AND NEW.reference = OLD.reference
    AND NEW.question_hash = OLD.question_hash AND NEW.payload = OLD.payload
    AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: only a question''s text may be redacted');
END;
