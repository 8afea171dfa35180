-- Reviews are found by the event they review (its id, in `reference`).
CREATE INDEX audit_events_kind_reference ON audit_events (kind, reference);
