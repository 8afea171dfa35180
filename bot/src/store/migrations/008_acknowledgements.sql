-- The acknowledgement ledger: who has read and acknowledged which version of
-- which policy, when and how. Each row is written in the same transaction as
-- its 'acknowledged' audit event, so the hash chain covers it; a second
-- acknowledgement of the same version changes nothing.
CREATE TABLE acknowledgements (
    staff    TEXT NOT NULL,              -- directory id, school:name-slug
    school   TEXT NOT NULL,
    policy   TEXT NOT NULL,
    version  TEXT NOT NULL,
    at       TEXT NOT NULL,
    how      TEXT NOT NULL,              -- link, email, matrix
    event_id INTEGER NOT NULL REFERENCES audit_events (id),
    PRIMARY KEY (school, policy, version, staff)
) WITHOUT ROWID;
CREATE INDEX acknowledgements_staff ON acknowledgements (staff, school, policy);

-- Nudge campaigns are persisted plans: every nudge is a row before anything
-- is sent, marked 'sending' before it leaves and 'sent' once the server took
-- it, so a crash mid-campaign loses and doubles nothing.
CREATE TABLE campaigns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    reason     TEXT NOT NULL,             -- "now", "schedule", "new version"
    planned    INTEGER NOT NULL
);

CREATE TABLE nudges (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign      INTEGER NOT NULL REFERENCES campaigns (id),
    staff         TEXT NOT NULL,
    school        TEXT NOT NULL,
    policy        TEXT NOT NULL,
    version       TEXT NOT NULL,
    since_version TEXT,                   -- the version they last acknowledged
    attempt       INTEGER NOT NULL,       -- 1 for the first nudge about this version
    channel       TEXT NOT NULL,          -- email, matrix
    address       TEXT NOT NULL,
    status        TEXT NOT NULL,          -- planned, sending, sent, failed, skipped
    detail        TEXT NOT NULL DEFAULT '',
    sent_at       TEXT,
    UNIQUE (campaign, staff, school, policy)
);
CREATE INDEX nudges_status ON nudges (status, id);
CREATE INDEX nudges_staff ON nudges (staff, school, policy, version);

-- Small secrets the service makes for itself (the key that signs
-- acknowledgement links).
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
