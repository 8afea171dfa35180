-- The audit log's guards, all in one place. Every statement can run again
-- on a store that has them (`policybot audit guard` does, to put back a
-- trigger someone dropped); `Store::guard_problems` compares the triggers
-- in a store with the ones this file makes.

-- Rows are never deleted.
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- Events are only added after the head: never slipped in before it, never
-- put back in place of a deleted one.
CREATE TRIGGER IF NOT EXISTS audit_events_append_only BEFORE INSERT ON audit_events
WHEN NEW.id <= coalesce((SELECT last_id FROM audit_head WHERE one = 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: events are added after the last one');
END;

-- The only change allowed is redacting a question's text (its hash stays,
-- so the chain still verifies), and only under a `redacted` event recorded
-- first whose cutoff is after the question was asked: redaction is on the
-- record, and a question asked after the cutoff cannot be erased with it.
-- (Whether that cutoff respected the retention period is for `verify`: it
-- reads the period from the redaction event.)
DROP TRIGGER IF EXISTS audit_events_only_redact;
CREATE TRIGGER IF NOT EXISTS audit_events_only_redaction BEFORE UPDATE ON audit_events
WHEN NOT (
    NEW.question IS NULL
    AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.kind = OLD.kind AND NEW.school = OLD.school
    AND NEW.asker = OLD.asker AND NEW.channel = OLD.channel AND NEW.reference = OLD.reference
    AND NEW.question_hash = OLD.question_hash AND NEW.payload = OLD.payload
    AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
    AND EXISTS (
        SELECT 1 FROM audit_events r
        WHERE r.kind = 'redacted' AND r.id > OLD.id AND json_extract(r.payload, '$.before') > OLD.at
    )
)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: only a question''s text may be redacted, under a redaction event');
END;

-- The head only moves forward, and only to the event that is last.
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'the audit log''s head cannot be removed');
END;

CREATE TRIGGER IF NOT EXISTS audit_head_forward BEFORE UPDATE ON audit_head
WHEN NOT (
    NEW.one = OLD.one AND NEW.last_id > OLD.last_id
    AND NEW.last_hash = (SELECT hash FROM audit_events WHERE id = NEW.last_id)
    AND NOT EXISTS (SELECT 1 FROM audit_events WHERE id > NEW.last_id)
)
BEGIN
    SELECT RAISE(ABORT, 'the audit log''s head only moves forward, to the last event');
END;
