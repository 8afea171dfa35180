-- The e-safety lead's examples: a question she marked "covered by clause X"
-- (or an answer "wrong — the right clause is X") is kept as an example for
-- X, which the engine uses to find X for questions close to it.
--
-- Derived from the audit log like `first_citations`: written in the same
-- transaction as the `reviewed` event that adds an example and the
-- `example-removed` event that takes it away, so every change is on the
-- record and the table can be rebuilt from the events. One example per
-- question: a later review of the same question replaces it.
--
-- The question's text is copied here, out of the audit log's redactable
-- column, so retention deletes the example with the text
-- (`Store::redact_older_than`); the review event itself never holds the text.
CREATE TABLE examples (
    question_event INTEGER PRIMARY KEY REFERENCES audit_events (id),
    school         TEXT NOT NULL,
    clause         TEXT NOT NULL,
    question       TEXT NOT NULL,
    marked_by      TEXT NOT NULL,            -- the dashboard user who marked it
    at             TEXT NOT NULL,            -- when (the review event's time)
    review_event   INTEGER NOT NULL REFERENCES audit_events (id)
);
CREATE INDEX examples_school_clause ON examples (school, clause);

-- Reviews from before this table: the latest review of each question that
-- named a clause, if the question's text is still there.
INSERT INTO examples (question_event, school, clause, question, marked_by, at, review_event)
SELECT q.id, q.school, json_extract(r.payload, '$.clause'), q.question,
       coalesce(json_extract(r.payload, '$.by'), ''), r.at, r.id
FROM audit_events r JOIN audit_events q ON q.id = CAST(r.reference AS INTEGER)
WHERE r.id IN (SELECT max(id) FROM audit_events WHERE kind = 'reviewed' GROUP BY reference)
  AND json_extract(r.payload, '$.mark') IN ('covered', 'wrong')
  AND coalesce(json_extract(r.payload, '$.clause'), '') <> ''
  AND q.kind IN ('answered', 'declined')
  AND q.question IS NOT NULL;
