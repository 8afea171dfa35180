-- Every version of every policy the bot has answered from, with its clauses,
-- so an old answer can be read against the words it quoted and staff can be
-- shown what changed. A version is its content: the same clauses, title and
-- version line seen again (a file re-saved, or turned into a PDF) is the same
-- version.
CREATE TABLE policy_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    school      TEXT NOT NULL,
    policy      TEXT NOT NULL,            -- the policy's slug
    version     TEXT NOT NULL,            -- the label answers cite
    fingerprint TEXT NOT NULL,            -- SHA-256 of what the version says
    title       TEXT NOT NULL,
    source      TEXT NOT NULL,            -- the file it was read from
    clauses     INTEGER NOT NULL,
    first_seen  TEXT NOT NULL,
    last_live   TEXT NOT NULL,            -- last time it was made the live version
    policy_json TEXT NOT NULL,            -- the whole parsed policy
    UNIQUE (school, policy, fingerprint),
    UNIQUE (school, policy, version)
);
CREATE INDEX policy_versions_source ON policy_versions (source, last_live);
