-- The notification outbox. The writer inserts one row per notable event in
-- the transaction that stores the event (one small insert into a table with
-- only a primary key, instead of a River job with River's indexes on the
-- writer's path); kicknotify moves the rows into River's queue, deleting
-- them in the transaction that inserts the jobs. River jobs enqueued by an
-- older writer stay in River's queue and are worked as before.
CREATE TABLE kickmon.notify_outbox (
    seq         bigint PRIMARY KEY,
    changes     text[] NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE kickmon.notify_outbox IS 'Notable events not yet handed to kicknotify''s queue: written by kickwriter with the event, deleted by kicknotify as it enqueues their River jobs (kickmon_river.river_job).';
COMMENT ON COLUMN kickmon.notify_outbox.seq IS 'The event (kickmon.status_events.seq).';
COMMENT ON COLUMN kickmon.notify_outbox.changes IS 'What is notable: live, offline, title, category, renamed.';
COMMENT ON COLUMN kickmon.notify_outbox.enqueued_at IS 'When the writer''s transaction stored it (the backlog''s age).';

-- kicknotify LISTENs on kickmon_outbox: one NOTIFY per statement that
-- inserted rows (sent at commit), whatever statement it was.
CREATE FUNCTION kickmon.notify_outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM inserted) THEN
        PERFORM pg_notify('kickmon_outbox', '');
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION kickmon.notify_outbox_wake() IS 'NOTIFY kickmon_outbox when a statement inserted kickmon.notify_outbox rows (wakes kicknotify).';
CREATE TRIGGER notify_outbox_wake AFTER INSERT ON kickmon.notify_outbox
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION kickmon.notify_outbox_wake();
