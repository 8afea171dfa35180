-- A reaction or a reply finds the nudge it answers by the message the
-- nudge went out as (a Matrix event id, an email Message-ID), and the
-- latest nudge sent to an address: with a 10,000-staff campaign a month,
-- both want an index rather than a scan of every nudge ever sent.
CREATE INDEX nudges_sent_as ON nudges (channel, detail) WHERE status = 'sent';
CREATE INDEX nudges_sent_to ON nudges (channel, address, id) WHERE status = 'sent';
