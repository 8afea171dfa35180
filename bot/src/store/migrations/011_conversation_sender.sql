-- A conversation's context is one person's: in a thread several members of
-- staff write in (an email thread with colleagues copied in, a Matrix group
-- room), a follow-up is read with its sender's own last question, never with
-- someone else's (which was then also recorded under the wrong name).
CREATE TABLE conversations_by_sender (
    channel   TEXT NOT NULL,
    key       TEXT NOT NULL,
    -- The sender as the channel knows them: an email address, a Matrix id.
    sender    TEXT NOT NULL,
    question  TEXT NOT NULL,
    clause    TEXT,
    at        TEXT NOT NULL,
    PRIMARY KEY (channel, key, sender)
) WITHOUT ROWID;

-- Earlier rows name no sender: kept under '' so the bot still knows which
-- threads it answered in, and never read as anyone's context.
INSERT INTO conversations_by_sender (channel, key, sender, question, clause, at)
SELECT channel, key, '', question, clause, at FROM conversations;

DROP TABLE conversations;
ALTER TABLE conversations_by_sender RENAME TO conversations;
