-- kickmon's schema: the users' interface. Names are contracts (design.md).

CREATE TABLE kickmon.streamers (
    broadcaster_user_id bigint PRIMARY KEY,
    slug                text NOT NULL,
    channel_id          bigint,
    live_state          text NOT NULL,
    is_live             boolean NOT NULL,
    title               text NOT NULL DEFAULT '',
    category_id         bigint,
    category_name       text NOT NULL DEFAULT '',
    viewer_count        bigint NOT NULL DEFAULT 0,
    live_since          timestamptz,
    session_id          text,
    coverage            jsonb NOT NULL DEFAULT '[]',
    added_at            timestamptz,
    last_event_seq      bigint NOT NULL,
    updated_at          timestamptz NOT NULL,
    last_confirmed_at   timestamptz,
    removed_at          timestamptz
-- Nearly every write is an update of an existing row: leave room on each
-- page so that updates not touching an indexed column (viewers, title, …)
-- are HOT and skip index maintenance (measured: 10% HOT at the default
-- fillfactor, 100% at 50; the batched writer about 1.5× faster).
) WITH (fillfactor = 50);
CREATE INDEX streamers_slug ON kickmon.streamers (slug);
CREATE INDEX streamers_live ON kickmon.streamers (broadcaster_user_id) WHERE is_live;

COMMENT ON TABLE kickmon.streamers IS 'Current state of every streamer kickmon watches or watched: one row per Kick user, updated by each event about them.';
COMMENT ON COLUMN kickmon.streamers.broadcaster_user_id IS 'Kick''s immutable user id, the key of everything.';
COMMENT ON COLUMN kickmon.streamers.slug IS 'Current channel slug (changes on renames; see status_events kind STREAMER_RENAMED).';
COMMENT ON COLUMN kickmon.streamers.channel_id IS 'Kick channel id (Pusher channel.{id}); NULL while unknown.';
COMMENT ON COLUMN kickmon.streamers.live_state IS 'LIVE, OFFLINE or UNKNOWN (no source has reported yet).';
COMMENT ON COLUMN kickmon.streamers.is_live IS 'True while a stream session is open (live_state = LIVE).';
COMMENT ON COLUMN kickmon.streamers.title IS 'Current or last stream title.';
COMMENT ON COLUMN kickmon.streamers.category_id IS 'Current or last stream category id; NULL if none.';
COMMENT ON COLUMN kickmon.streamers.category_name IS 'Current or last stream category name.';
COMMENT ON COLUMN kickmon.streamers.viewer_count IS 'Last known viewer count; 0 when offline.';
COMMENT ON COLUMN kickmon.streamers.live_since IS 'Start of the open session (Kick''s official start time once confirmed); NULL when not live.';
COMMENT ON COLUMN kickmon.streamers.session_id IS 'The open session while live, else the last session seen (stream_sessions.session_id); NULL if none.';
COMMENT ON COLUMN kickmon.streamers.coverage IS 'Per-source visibility: JSON array of {source, blind, reason, since, last_confirmed_at} (protobuf JSON of kickmon.v1.Coverage); each last_confirmed_at is refreshed like the column last_confirmed_at.';
COMMENT ON COLUMN kickmon.streamers.added_at IS 'When the streamer was added to the watch list.';
COMMENT ON COLUMN kickmon.streamers.last_event_seq IS 'seq of the event this row reflects; an older event never overwrites a newer one.';
COMMENT ON COLUMN kickmon.streamers.updated_at IS 'When kickmon observed the event this row reflects (status_events.observed_at of last_event_seq).';
COMMENT ON COLUMN kickmon.streamers.last_confirmed_at IS 'When any source last confirmed this state. Written by each event about the streamer and, since unchanged states are confirmed without events, refreshed from the collector every KICKMON_CONFIRM_INTERVAL (default 30s) while the writer runs; it never moves backwards.';
COMMENT ON COLUMN kickmon.streamers.removed_at IS 'When the streamer was removed from the watch list; NULL while watched.';

CREATE TABLE kickmon.stream_sessions (
    session_id             text PRIMARY KEY,
    broadcaster_user_id    bigint NOT NULL,
    started_at             timestamptz NOT NULL,
    started_at_provisional boolean NOT NULL DEFAULT false,
    ended_at               timestamptz,
    title                  text NOT NULL DEFAULT '',
    category_name          text NOT NULL DEFAULT '',
    peak_viewers           bigint NOT NULL DEFAULT 0,
    detected_by            text NOT NULL,
    observed_late          boolean NOT NULL DEFAULT false,
    last_event_seq         bigint NOT NULL,
    updated_at             timestamptz NOT NULL,
    UNIQUE (broadcaster_user_id, started_at)
-- Open sessions are updated by every STREAM_* event: as for streamers,
-- room for HOT updates (measured on 1000 open sessions: 100% HOT and 25
-- pages at 50, 96% and 41 pages at 70, 29% and 309 bloated pages at 100).
-- Closed sessions leave their pages half empty: twice the space of a
-- small table.
) WITH (fillfactor = 50);
CREATE INDEX stream_sessions_open ON kickmon.stream_sessions (broadcaster_user_id) WHERE ended_at IS NULL;
CREATE INDEX stream_sessions_started ON kickmon.stream_sessions (started_at);

COMMENT ON TABLE kickmon.stream_sessions IS 'One row per stream session, keyed by kickmon''s session_id; (broadcaster_user_id, started_at) is unique.';
COMMENT ON COLUMN kickmon.stream_sessions.session_id IS 'kickmon''s id for the session (a ULID assigned by the collector), stable when started_at is corrected.';
COMMENT ON COLUMN kickmon.stream_sessions.broadcaster_user_id IS 'The streamer (streamers.broadcaster_user_id).';
COMMENT ON COLUMN kickmon.stream_sessions.started_at IS 'Kick''s official start time; provisional (from push) while started_at_provisional.';
COMMENT ON COLUMN kickmon.stream_sessions.started_at_provisional IS 'True while started_at comes from push and the official API has not confirmed it.';
COMMENT ON COLUMN kickmon.stream_sessions.ended_at IS 'Kick''s end time when a source gave one, else when a source first reported the stream offline; NULL while live.';
COMMENT ON COLUMN kickmon.stream_sessions.title IS 'The session''s latest title.';
COMMENT ON COLUMN kickmon.stream_sessions.category_name IS 'The session''s latest category name.';
COMMENT ON COLUMN kickmon.stream_sessions.peak_viewers IS 'Highest viewer count seen during the session.';
COMMENT ON COLUMN kickmon.stream_sessions.detected_by IS 'Source that first reported the session: poll, pusher, webhook, operator or collector.';
COMMENT ON COLUMN kickmon.stream_sessions.observed_late IS 'True when kickmon saw the session only after the fact (e.g. already live when added).';
COMMENT ON COLUMN kickmon.stream_sessions.last_event_seq IS 'seq of the event this row reflects; an older event never overwrites a newer one.';
COMMENT ON COLUMN kickmon.stream_sessions.updated_at IS 'When kickmon observed the event this row reflects.';

CREATE TABLE kickmon.status_events (
    seq                 bigint PRIMARY KEY,
    broadcaster_user_id bigint NOT NULL,
    kind                text NOT NULL,
    source              text NOT NULL,
    kick_time           timestamptz,
    observed_at         timestamptz NOT NULL,
    session_id          text,
    previous_slug       text,
    coverage            jsonb,
    state               jsonb NOT NULL,
    stored_at           timestamptz NOT NULL DEFAULT now()
);
-- Indexes cost the writer on every event, so only these: a streamer's
-- history in order (WHERE broadcaster_user_id = $1 ORDER BY seq; also
-- serves that streamer's events of a kind or a time span, a few thousand
-- rows a day at most), and time ranges over everyone (observed_at rises
-- with seq, the table is append-only, so a BRIN index of a few pages does
-- it at next to no cost where a B-tree cost ~10% of the insert). No index
-- on kind: seven values, never selective on its own.
CREATE INDEX status_events_user ON kickmon.status_events (broadcaster_user_id, seq);
CREATE INDEX status_events_observed ON kickmon.status_events USING brin (observed_at) WITH (autosummarize = on);

COMMENT ON TABLE kickmon.status_events IS 'Append-only history: one row per collector event, in seq order. LISTEN kickmon_events for ''<first>-<last>'' seq ranges after each commit.';
COMMENT ON COLUMN kickmon.status_events.seq IS 'The event''s sequence number: monotonic, never reused. Seqs missing here are in coverage_gaps (source spool) or quarantine.';
COMMENT ON COLUMN kickmon.status_events.broadcaster_user_id IS 'The streamer the event is about.';
COMMENT ON COLUMN kickmon.status_events.kind IS 'STREAM_STARTED, STREAM_ENDED, STREAM_UPDATED, STREAMER_ADDED, STREAMER_REMOVED, STREAMER_RENAMED or COVERAGE_CHANGED.';
COMMENT ON COLUMN kickmon.status_events.source IS 'Source that saw the change first: poll, pusher, webhook, operator (kickctl) or collector (e.g. an expired offline grace window).';
COMMENT ON COLUMN kickmon.status_events.kick_time IS 'When Kick says the change happened; NULL when Kick gave no time.';
COMMENT ON COLUMN kickmon.status_events.observed_at IS 'When kickmon saw the change.';
COMMENT ON COLUMN kickmon.status_events.session_id IS 'The session a STREAM_* event is about; NULL for other kinds.';
COMMENT ON COLUMN kickmon.status_events.previous_slug IS 'The old slug, for STREAMER_RENAMED; NULL otherwise.';
COMMENT ON COLUMN kickmon.status_events.coverage IS 'The changed coverage entry, for COVERAGE_CHANGED; NULL otherwise.';
COMMENT ON COLUMN kickmon.status_events.state IS 'The streamer''s full state after the event (protobuf JSON of kickmon.v1.Streamer).';
COMMENT ON COLUMN kickmon.status_events.stored_at IS 'When the writer committed the row.';

CREATE TABLE kickmon.coverage_gaps (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    broadcaster_user_id bigint,
    source              text NOT NULL,
    started_at          timestamptz,
    ended_at            timestamptz,
    reason              text NOT NULL DEFAULT '',
    first_seq           bigint,
    last_seq            bigint,
    opened_seq          bigint UNIQUE,
    closed_seq          bigint,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((broadcaster_user_id IS NULL) = (first_seq IS NOT NULL))
);
CREATE UNIQUE INDEX coverage_gaps_one_open ON kickmon.coverage_gaps (broadcaster_user_id, source) WHERE ended_at IS NULL;
CREATE INDEX coverage_gaps_user ON kickmon.coverage_gaps (broadcaster_user_id, started_at);

COMMENT ON TABLE kickmon.coverage_gaps IS 'Times when kickmon was blind: a source that could not see a streamer (broadcaster_user_id set), or events lost before the writer stored them (broadcaster_user_id NULL, source spool, first_seq..last_seq).';
COMMENT ON COLUMN kickmon.coverage_gaps.id IS 'Row id.';
COMMENT ON COLUMN kickmon.coverage_gaps.broadcaster_user_id IS 'The streamer a source was blind for; NULL for lost event ranges (every streamer may be affected).';
COMMENT ON COLUMN kickmon.coverage_gaps.source IS 'poll, pusher or webhook for a blind source; spool for events the collector dropped unacknowledged.';
COMMENT ON COLUMN kickmon.coverage_gaps.started_at IS 'When the blindness began (for lost ranges: when the last event before the loss was observed; NULL if unknown).';
COMMENT ON COLUMN kickmon.coverage_gaps.ended_at IS 'When the source could see again (for lost ranges: when the first event after the loss was observed, else when the loss was detected); NULL while still blind.';
COMMENT ON COLUMN kickmon.coverage_gaps.reason IS 'Why, e.g. socket down, blocked, no channel id, or the lost range''s explanation.';
COMMENT ON COLUMN kickmon.coverage_gaps.first_seq IS 'First lost seq, for lost event ranges; NULL otherwise.';
COMMENT ON COLUMN kickmon.coverage_gaps.last_seq IS 'Last lost seq, for lost event ranges; NULL otherwise.';
COMMENT ON COLUMN kickmon.coverage_gaps.opened_seq IS 'seq of the COVERAGE_CHANGED event that opened the gap; NULL for lost ranges.';
COMMENT ON COLUMN kickmon.coverage_gaps.closed_seq IS 'seq of the COVERAGE_CHANGED event that closed the gap; NULL while open or for lost ranges.';
COMMENT ON COLUMN kickmon.coverage_gaps.recorded_at IS 'When the writer recorded the row.';

CREATE TABLE kickmon.writer_cursor (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq   bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO kickmon.writer_cursor DEFAULT VALUES;

COMMENT ON TABLE kickmon.writer_cursor IS 'The writer''s position in the collector''s event log: one row, committed in the same transaction as the data.';
COMMENT ON COLUMN kickmon.writer_cursor.id IS 'Always true: the table holds one row.';
COMMENT ON COLUMN kickmon.writer_cursor.last_seq IS 'The last applied seq; the writer resumes at last_seq + 1.';
COMMENT ON COLUMN kickmon.writer_cursor.updated_at IS 'When the cursor last moved.';

CREATE TABLE kickmon.quarantine (
    seq                 bigint PRIMARY KEY,
    broadcaster_user_id bigint,
    kind                text NOT NULL,
    error               text NOT NULL,
    event               jsonb NOT NULL,
    event_proto         bytea NOT NULL,
    quarantined_at      timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE kickmon.quarantine IS 'Events the writer could not apply (invalid, or rejected by a constraint); the pipeline moved on past them.';
COMMENT ON COLUMN kickmon.quarantine.seq IS 'The event''s seq.';
COMMENT ON COLUMN kickmon.quarantine.broadcaster_user_id IS 'The streamer, if the event named one.';
COMMENT ON COLUMN kickmon.quarantine.kind IS 'The event kind, as in status_events.kind.';
COMMENT ON COLUMN kickmon.quarantine.error IS 'Why the event was rejected.';
COMMENT ON COLUMN kickmon.quarantine.event IS 'The event as protobuf JSON (NUL characters replaced by U+FFFD).';
COMMENT ON COLUMN kickmon.quarantine.event_proto IS 'The event as received (protobuf binary of kickmon.v1.Event); empty if it could not be encoded again (e.g. invalid UTF-8).';
COMMENT ON COLUMN kickmon.quarantine.quarantined_at IS 'When the writer quarantined it.';
