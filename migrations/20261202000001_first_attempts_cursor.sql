-- The highest `seq` among the first attempts an endpoint has been sent. A lease looks for
-- waiting first attempts from a little below it rather than from the start of the
-- endpoint's queue: the index entries of delivered events stay there until vacuum, and
-- walking them on every lease made each lease slower the more had been delivered.
ALTER TABLE webhook_endpoints ADD COLUMN first_attempts_sent_seq bigint NOT NULL DEFAULT 0;
