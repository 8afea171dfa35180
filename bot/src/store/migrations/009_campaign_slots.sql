-- A scheduled campaign, or one for a new policy version, is planned once:
-- its slot ("schedule 2026-12-01T09:00:00Z", "version school/policy/2.0") is
-- unique, so a restart or a second process cannot plan it twice.
ALTER TABLE campaigns ADD COLUMN slot TEXT;
CREATE UNIQUE INDEX campaigns_slot ON campaigns (slot) WHERE slot IS NOT NULL;
