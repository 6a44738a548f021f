-- The collector's event log has an identity (a log id made with its spool).
-- The writer keeps the id of the log its cursor belongs to; when the
-- collector's log is replaced (its state was lost), the new log's seqs
-- start at 1 again and are stored shifted by seq_offset, so that
-- status_events.seq stays monotonic and never reused.

ALTER TABLE kickmon.writer_cursor
    ADD COLUMN log_id text,
    ADD COLUMN seq_offset bigint NOT NULL DEFAULT 0 CHECK (seq_offset >= 0);

COMMENT ON COLUMN kickmon.writer_cursor.log_id IS 'The collector''s event log last_seq belongs to (SpoolStatus.log_id); NULL until the writer first sees a log id.';
COMMENT ON COLUMN kickmon.writer_cursor.seq_offset IS 'Added to the seqs of log_id to store them: status_events.seq = the log''s seq + seq_offset. 0 for the first log.';
COMMENT ON COLUMN kickmon.writer_cursor.last_seq IS 'The last applied seq (as stored, that is, with seq_offset added); the writer resumes at the log''s seq last_seq - seq_offset + 1.';

CREATE TABLE kickmon.event_logs (
    log_id     text PRIMARY KEY,
    seq_offset bigint NOT NULL CHECK (seq_offset >= 0),
    adopted_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE kickmon.event_logs IS 'Every collector event log the writer followed, in order: the stored seqs above seq_offset (up to the next log''s seq_offset) came from log_id.';
COMMENT ON COLUMN kickmon.event_logs.log_id IS 'The event log''s id (a ULID made with the collector''s spool).';
COMMENT ON COLUMN kickmon.event_logs.seq_offset IS 'Added to this log''s seqs to store them.';
COMMENT ON COLUMN kickmon.event_logs.adopted_at IS 'When the writer started following this log.';
