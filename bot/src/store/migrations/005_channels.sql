-- Channels (Matrix, email) answer each message exactly once, across restarts.

-- Finding the exchange recorded for a message: a redelivered message reuses
-- it instead of being answered (and recorded) twice.
CREATE INDEX audit_events_reference ON audit_events (channel, reference) WHERE reference <> '';

-- Replies that reached the channel. A message recorded but not yet here is
-- sent again (with the same transaction id, so the server drops a repeat).
CREATE TABLE deliveries (
    channel   TEXT NOT NULL,
    reference TEXT NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (channel, reference)
) WITHOUT ROWID;

-- What a channel must remember between runs: the Matrix sync token, which
-- only moves on once every event it covers has been handled.
CREATE TABLE channel_state (
    channel TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (channel, key)
) WITHOUT ROWID;

-- Conversations the bot has answered in (a Matrix thread, a direct chat),
-- with their last self-contained question and the clause it cited, so a
-- follow-up is read in context and "source" knows which clause is meant.
CREATE TABLE conversations (
    channel   TEXT NOT NULL,
    key       TEXT NOT NULL,
    question  TEXT NOT NULL,
    clause    TEXT,
    at        TEXT NOT NULL,
    PRIMARY KEY (channel, key)
) WITHOUT ROWID;
