-- status_events becomes partitioned by month of observed_at (UTC), so that
-- retention (KICKMON_EVENTS_RETENTION) drops whole partitions instead of
-- deleting rows. Existing rows are copied into the new table, then the old
-- table is dropped; all in this migration's transaction.

ALTER TABLE kickmon.status_events RENAME TO status_events_unpartitioned;
ALTER TABLE kickmon.status_events_unpartitioned RENAME CONSTRAINT status_events_pkey TO status_events_unpartitioned_pkey;
ALTER INDEX kickmon.status_events_user RENAME TO status_events_unpartitioned_user;
ALTER INDEX kickmon.status_events_observed RENAME TO status_events_unpartitioned_observed;

CREATE TABLE kickmon.status_events (
    seq                 bigint NOT NULL,
    broadcaster_user_id bigint NOT NULL,
    kind                text NOT NULL,
    source              text NOT NULL,
    kick_time           timestamptz,
    observed_at         timestamptz NOT NULL,
    session_id          text,
    previous_slug       text,
    coverage            jsonb,
    state               jsonb NOT NULL,
    stored_at           timestamptz NOT NULL DEFAULT now(),
    -- A partitioned table's keys must hold the partition key. A replayed
    -- event has the observed_at it had, so a duplicate seq still collides.
    PRIMARY KEY (seq, observed_at)
) PARTITION BY RANGE (observed_at);
-- The same indexes as before (see 001): a streamer's history in order, and
-- time ranges over everyone.
CREATE INDEX status_events_user ON kickmon.status_events (broadcaster_user_id, seq);
CREATE INDEX status_events_observed ON kickmon.status_events USING brin (observed_at) WITH (autosummarize = on);

-- status_events_partition creates (if missing) the partition holding at
-- and returns its name: status_events_YYYY_MM, the month in UTC. The
-- writer calls it ahead of time and for any event whose month has none.
CREATE FUNCTION kickmon.status_events_partition(at timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
    name  text := 'status_events_' || to_char(month, 'YYYY_MM');
BEGIN
    IF to_regclass('kickmon.' || quote_ident(name)) IS NULL THEN
        EXECUTE format('CREATE TABLE kickmon.%I PARTITION OF kickmon.status_events FOR VALUES FROM (%L) TO (%L)',
            name, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
    END IF;
    RETURN name;
END
$$;
COMMENT ON FUNCTION kickmon.status_events_partition(timestamptz) IS 'Creates, if missing, the month partition of status_events holding the given time (status_events_YYYY_MM, UTC) and returns its name.';

SELECT kickmon.status_events_partition(m)
FROM (SELECT DISTINCT date_trunc('month', observed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m
      FROM kickmon.status_events_unpartitioned
      UNION SELECT now() UNION SELECT now() + interval '1 month') AS months;

INSERT INTO kickmon.status_events (seq, broadcaster_user_id, kind, source, kick_time, observed_at,
    session_id, previous_slug, coverage, state, stored_at)
SELECT seq, broadcaster_user_id, kind, source, kick_time, observed_at,
    session_id, previous_slug, coverage, state, stored_at
FROM kickmon.status_events_unpartitioned;

DROP TABLE kickmon.status_events_unpartitioned;

COMMENT ON TABLE kickmon.status_events IS 'Append-only history: one row per collector event, in seq order. Partitioned by month of observed_at (status_events_YYYY_MM, UTC); the writer creates partitions ahead and drops those older than KICKMON_EVENTS_RETENTION. LISTEN kickmon_events for ''<first>-<last>'' seq ranges after each commit.';
COMMENT ON COLUMN kickmon.status_events.seq IS 'The event''s sequence number: monotonic, never reused (the collector''s seq plus writer_cursor.seq_offset; see event_logs). Seqs missing here are in coverage_gaps (source spool), quarantine, or a dropped partition.';
COMMENT ON COLUMN kickmon.status_events.broadcaster_user_id IS 'The streamer the event is about.';
COMMENT ON COLUMN kickmon.status_events.kind IS 'STREAM_STARTED, STREAM_ENDED, STREAM_UPDATED, STREAMER_ADDED, STREAMER_REMOVED, STREAMER_RENAMED or COVERAGE_CHANGED.';
COMMENT ON COLUMN kickmon.status_events.source IS 'Source that saw the change first: poll, pusher, webhook, operator (kickctl) or collector (e.g. an expired offline grace window).';
COMMENT ON COLUMN kickmon.status_events.kick_time IS 'When Kick says the change happened; NULL when Kick gave no time.';
COMMENT ON COLUMN kickmon.status_events.observed_at IS 'When kickmon saw the change; the partition key.';
COMMENT ON COLUMN kickmon.status_events.session_id IS 'The session a STREAM_* event is about; NULL for other kinds.';
COMMENT ON COLUMN kickmon.status_events.previous_slug IS 'The old slug, for STREAMER_RENAMED; NULL otherwise.';
COMMENT ON COLUMN kickmon.status_events.coverage IS 'The changed coverage entry, for COVERAGE_CHANGED; NULL otherwise.';
COMMENT ON COLUMN kickmon.status_events.state IS 'The streamer''s full state after the event (protobuf JSON of kickmon.v1.Streamer).';
COMMENT ON COLUMN kickmon.status_events.stored_at IS 'When the writer committed the row.';
