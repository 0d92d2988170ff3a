-- What the outbox writes per event, made smaller.
--
-- Each event is written once and updated once when an attempt is made. The update moves
-- the event out of the queue's partial index, so it cannot be heap-only; on a full page its
-- new version, payload included, went to another page and into the write-ahead log whole
-- (about a kilobyte an event). Room left on each page keeps the new version beside the old
-- one, where PostgreSQL logs only the bytes that changed.
ALTER TABLE webhook_events SET (fillfactor = 40);

-- Nothing looks deliveries up by their event: they are listed by organization and time,
-- and the event of a delivery is found through the event's own key.
DROP INDEX webhook_deliveries_event;
