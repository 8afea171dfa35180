-- The email channel records each mail it handled (answered, declined,
-- refused or ignored) and each reply the mail server accepted ('sent') as
-- audit events keyed by the mail's Message-ID. Replies per address per hour
-- are counted from the 'sent' events, whose asker is the recipient's address.
CREATE INDEX audit_events_sent_to ON audit_events (asker, at) WHERE kind = 'sent';
