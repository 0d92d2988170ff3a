-- Two indexes of the outbox that no query uses, each an entry more for every event written.
-- Nothing looks events up by `seq` alone: the queue's index orders them per endpoint, and
-- the identity column keeps the numbers unique; the planner also took this index for the
-- lease's test of waiting first attempts, walking through every event already sent. Events
-- are found by their id (with its organization) or through the queue's indexes, never by
-- organization and date.
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_seq_key;
DROP INDEX webhook_events_organization;
