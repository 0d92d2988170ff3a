-- Nothing looks events up by `seq` alone: the queue's index orders them per endpoint, and
-- the identity column keeps the numbers unique. The unique index on it cost every event
-- written one more index entry, and the planner took it for the lease's test of waiting
-- first attempts, walking through every event already sent.
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_seq_key;
