-- Each order counts its open disputes (not prevented, won or lost) on its own row. A
-- create-refund that waits for the order's lock then reads the row version the lock gives
-- it, so it sees a dispute opened by the transaction it waited for; a dispute row looked up
-- on its own would be read with a snapshot taken before that transaction committed.
ALTER TABLE orders ADD COLUMN open_disputes integer NOT NULL DEFAULT 0
    CHECK (open_disputes >= 0);

CREATE FUNCTION orders_count_open_disputes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.order_id = NEW.order_id
       AND (OLD.status IN ('prevented', 'won', 'lost')) = (NEW.status IN ('prevented', 'won', 'lost')) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status NOT IN ('prevented', 'won', 'lost') THEN
        UPDATE orders SET open_disputes = open_disputes - 1
        WHERE id = OLD.order_id AND organization_id = OLD.organization_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status NOT IN ('prevented', 'won', 'lost') THEN
        UPDATE orders SET open_disputes = open_disputes + 1
        WHERE id = NEW.order_id AND organization_id = NEW.organization_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER disputes_count_open AFTER INSERT OR UPDATE OF status, order_id OR DELETE ON disputes
    FOR EACH ROW EXECUTE FUNCTION orders_count_open_disputes();

UPDATE orders o
SET open_disputes = open.count
FROM (SELECT organization_id, order_id, count(*) AS count FROM disputes
      WHERE status NOT IN ('prevented', 'won', 'lost')
      GROUP BY organization_id, order_id) AS open
WHERE o.id = open.order_id AND o.organization_id = open.organization_id;
