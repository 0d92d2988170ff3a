-- The outbox and its delivery log are written only by the server, from rows it has just
-- read: an event from its refund's organization and that organization's endpoints, in the
-- refund's transaction; a delivery from the event it leased. Their foreign keys checked
-- nothing the server had not, and each check locked the referenced row: every event and
-- every delivery took a share lock on its organization's and its endpoint's rows, the
-- hottest rows of the schema, which PostgreSQL records in the row itself (a WAL record per
-- lock, a multixact when several transactions hold it). Writing a delivery row cost about
-- ten times as much with them. Nothing deletes organizations or endpoints (an endpoint's
-- delete is soft), so their cascades never ran.
ALTER TABLE webhook_events
    DROP CONSTRAINT webhook_events_organization_id_fkey,
    DROP CONSTRAINT webhook_events_endpoint_id_fkey;
ALTER TABLE webhook_deliveries
    DROP CONSTRAINT webhook_deliveries_organization_id_fkey,
    DROP CONSTRAINT webhook_deliveries_endpoint_id_fkey,
    DROP CONSTRAINT webhook_deliveries_event_id_fkey;
