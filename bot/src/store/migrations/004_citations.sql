-- Derived from the audit log, written in the same transaction as each event,
-- so the dashboard's reports need not read every event's JSON. The chain
-- covers the events; these tables can be rebuilt from them.

-- The clause each answer cited first.
CREATE TABLE first_citations (
    event_id INTEGER PRIMARY KEY REFERENCES audit_events (id),
    school   TEXT NOT NULL,
    clause   TEXT NOT NULL,
    version  TEXT NOT NULL
);

-- The latest review mark of each reviewed event.
CREATE TABLE review_marks (
    event_id INTEGER PRIMARY KEY REFERENCES audit_events (id),
    mark     TEXT NOT NULL
);

-- Per school and clause: times cited first, and answers marked correct / wrong.
CREATE TABLE clause_stats (
    school  TEXT NOT NULL,
    clause  TEXT NOT NULL,
    version TEXT NOT NULL,
    cited   INTEGER NOT NULL DEFAULT 0,
    correct INTEGER NOT NULL DEFAULT 0,
    wrong   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (school, clause)
);

INSERT INTO first_citations (event_id, school, clause, version)
SELECT id, school, json_extract(payload, '$.citations[0].clause'), coalesce(json_extract(payload, '$.citations[0].version'), '')
FROM audit_events
WHERE kind = 'answered' AND json_extract(payload, '$.citations[0].clause') IS NOT NULL;

INSERT INTO review_marks (event_id, mark)
SELECT CAST(reference AS INTEGER), json_extract(payload, '$.mark')
FROM audit_events
WHERE id IN (SELECT max(id) FROM audit_events WHERE kind = 'reviewed' GROUP BY reference)
  AND json_extract(payload, '$.mark') IS NOT NULL;

INSERT INTO clause_stats (school, clause, version, cited, correct, wrong)
SELECT c.school, c.clause, max(c.version), COUNT(*),
       SUM(CASE WHEN r.mark = 'correct' THEN 1 ELSE 0 END),
       SUM(CASE WHEN r.mark = 'wrong' THEN 1 ELSE 0 END)
FROM first_citations c LEFT JOIN review_marks r ON r.event_id = c.event_id
GROUP BY c.school, c.clause;
