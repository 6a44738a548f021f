package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOpts encodes protobuf messages for jsonb columns with the .proto field
// names (state->>'broadcaster_user_id'), like the SQL columns.
var jsonOpts = protojson.MarshalOptions{UseProtoNames: true}

// KindName is how an event kind is stored: the enum name without its
// EVENT_KIND_ prefix, e.g. STREAM_STARTED.
func KindName(k kickmonv1.EventKind) string {
	return strings.TrimPrefix(k.String(), "EVENT_KIND_")
}

// SourceName is how a source is stored: poll, pusher, webhook, operator,
// collector (unknown for an unset source).
func SourceName(s kickmonv1.Source) string {
	if s == kickmonv1.Source_SOURCE_UNSPECIFIED {
		return "unknown"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "SOURCE_"))
}

// liveStateName is how a live state is stored: LIVE, OFFLINE or UNKNOWN.
func liveStateName(s kickmonv1.LiveState) string {
	if s == kickmonv1.LiveState_LIVE_STATE_UNSPECIFIED {
		return "UNKNOWN"
	}
	return strings.TrimPrefix(s.String(), "LIVE_STATE_")
}

// invalidError marks an event the writer refuses before it reaches the
// database; such events are quarantined.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return "invalid event: " + e.msg }

func invalid(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Validate reports why an event cannot be applied, or nil.
func Validate(e *kickmonv1.Event) error {
	switch {
	case e.GetSeq() == 0:
		return invalid("seq 0")
	case e.GetSeq() > 1<<63-1:
		return invalid("seq %d does not fit a bigint", e.GetSeq())
	case e.GetStreamer() == nil:
		return invalid("no streamer state")
	case e.GetStreamer().GetBroadcasterUserId() <= 0:
		return invalid("broadcaster_user_id %d", e.GetStreamer().GetBroadcasterUserId())
	case e.GetStreamer().GetSlug() == "":
		return invalid("empty slug")
	case e.GetKind() == kickmonv1.EventKind_EVENT_KIND_UNSPECIFIED || kickmonv1.EventKind_name[int32(e.GetKind())] == "":
		return invalid("kind %v", e.GetKind())
	case e.GetObservedAt() == nil:
		return invalid("no observed_at")
	case e.GetKind() == kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED && e.GetCoverage() == nil:
		return invalid("COVERAGE_CHANGED without coverage")
	}
	if s := batch.SessionOf(e); s != nil && s.GetSessionId() == "" {
		return invalid("session without session_id")
	}
	for _, ts := range []*timestamppb.Timestamp{e.GetObservedAt(), e.GetKickTime(), e.GetStreamer().GetLiveSince(), e.GetStreamer().GetLastConfirmedAt(), batch.SessionOf(e).GetStartedAt(), batch.SessionOf(e).GetEndedAt()} {
		if ts != nil {
			if err := ts.CheckValid(); err != nil {
				return invalid("%v", err)
			}
		}
	}
	return nil
}

func ts(t *timestamppb.Timestamp) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t.AsTime(), Valid: true}
}

func tsTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func optInt(n int64) pgtype.Int8 { return pgtype.Int8{Int64: n, Valid: n != 0} }

func optText(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

// streamerRows are the columns of the streamers upsert.
type streamerRows struct {
	uid, viewers, seq                  []int64
	slug, state, title, cat, coverage  []string
	channel, catID                     []pgtype.Int8
	live                               []bool
	liveSince, added, confirmed, remov []pgtype.Timestamptz
	session                            []pgtype.Text
	updated                            []time.Time
}

func encodeStreamers(evs []*kickmonv1.Event) *streamerRows {
	r := &streamerRows{}
	var buf []byte
	for _, e := range evs {
		st := e.GetStreamer()
		buf = appendCoverages(buf[:0], st.GetCoverage())
		removed := pgtype.Timestamptz{}
		if st.GetRemoved() {
			removed = ts(e.GetObservedAt())
		}
		r.uid = append(r.uid, st.GetBroadcasterUserId())
		r.slug = append(r.slug, st.GetSlug())
		r.channel = append(r.channel, optInt(st.GetChannelId()))
		r.state = append(r.state, liveStateName(st.GetState()))
		r.live = append(r.live, st.GetState() == kickmonv1.LiveState_LIVE_STATE_LIVE)
		r.title = append(r.title, st.GetTitle())
		r.catID = append(r.catID, optInt(st.GetCategoryId()))
		r.cat = append(r.cat, st.GetCategoryName())
		r.viewers = append(r.viewers, st.GetViewerCount())
		r.liveSince = append(r.liveSince, ts(st.GetLiveSince()))
		r.session = append(r.session, optText(st.GetSession().GetSessionId()))
		r.coverage = append(r.coverage, string(buf))
		r.added = append(r.added, ts(st.GetAddedAt()))
		r.seq = append(r.seq, int64(e.GetSeq()))
		r.updated = append(r.updated, e.GetObservedAt().AsTime())
		r.confirmed = append(r.confirmed, ts(st.GetLastConfirmedAt()))
		r.remov = append(r.remov, removed)
	}
	return r
}

func (r *streamerRows) args() []any {
	return []any{r.uid, r.slug, r.channel, r.state, r.live, r.title, r.catID, r.cat, r.viewers,
		r.liveSince, r.session, r.coverage, r.added, r.seq, r.updated, r.confirmed, r.remov}
}

const upsertStreamers = `
INSERT INTO kickmon.streamers AS t (broadcaster_user_id, slug, channel_id, live_state, is_live, title,
    category_id, category_name, viewer_count, live_since, session_id, coverage, added_at,
    last_event_seq, updated_at, last_confirmed_at, removed_at)
SELECT u.uid, u.slug, u.channel, u.state, u.live, u.title, u.cat_id, u.cat, u.viewers, u.live_since,
    u.session, u.coverage::jsonb, u.added, u.seq, u.updated, u.confirmed, u.removed
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::boolean[], $6::text[], $7::bigint[],
    $8::text[], $9::bigint[], $10::timestamptz[], $11::text[], $12::text[], $13::timestamptz[],
    $14::bigint[], $15::timestamptz[], $16::timestamptz[], $17::timestamptz[])
    AS u(uid, slug, channel, state, live, title, cat_id, cat, viewers, live_since, session, coverage,
         added, seq, updated, confirmed, removed)
ON CONFLICT (broadcaster_user_id) DO UPDATE SET
    slug = excluded.slug,
    channel_id = coalesce(excluded.channel_id, t.channel_id),
    live_state = excluded.live_state,
    is_live = excluded.is_live,
    title = excluded.title,
    category_id = excluded.category_id,
    category_name = excluded.category_name,
    viewer_count = excluded.viewer_count,
    live_since = excluded.live_since,
    session_id = coalesce(excluded.session_id, t.session_id),
    coverage = excluded.coverage,
    added_at = coalesce(excluded.added_at, t.added_at),
    last_event_seq = excluded.last_event_seq,
    updated_at = excluded.updated_at,
    last_confirmed_at = coalesce(excluded.last_confirmed_at, t.last_confirmed_at),
    removed_at = CASE WHEN excluded.removed_at IS NULL THEN NULL
                      ELSE coalesce(t.removed_at, excluded.removed_at) END
WHERE excluded.last_event_seq > t.last_event_seq`

func encodeSessions(ss []batch.Session) []any {
	var (
		id, title, cat, detected []string
		uid, peak, seq           []int64
		started, updated         []time.Time
		prov, late               []bool
		ended                    []pgtype.Timestamptz
	)
	for _, s := range ss {
		start := s.ObservedAt
		if s.Session.GetStartedAt() != nil {
			start = s.Session.GetStartedAt().AsTime()
		}
		id = append(id, s.Session.GetSessionId())
		uid = append(uid, s.UserID)
		started = append(started, start)
		prov = append(prov, s.Session.GetStartedAtProvisional())
		ended = append(ended, ts(s.Session.GetEndedAt()))
		title = append(title, s.Session.GetTitle())
		cat = append(cat, s.Session.GetCategoryName())
		peak = append(peak, s.Session.GetPeakViewers())
		detected = append(detected, SourceName(s.Session.GetDetectedBy()))
		late = append(late, s.Session.GetObservedLate())
		seq = append(seq, int64(s.Seq))
		updated = append(updated, s.ObservedAt)
	}
	return []any{id, uid, started, prov, ended, title, cat, peak, detected, late, seq, updated}
}

const upsertSessions = `
INSERT INTO kickmon.stream_sessions AS t (session_id, broadcaster_user_id, started_at,
    started_at_provisional, ended_at, title, category_name, peak_viewers, detected_by, observed_late,
    last_event_seq, updated_at)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::boolean[], $5::timestamptz[],
    $6::text[], $7::text[], $8::bigint[], $9::text[], $10::boolean[], $11::bigint[], $12::timestamptz[])
ON CONFLICT (session_id) DO UPDATE SET
    started_at = excluded.started_at,
    started_at_provisional = excluded.started_at_provisional,
    ended_at = excluded.ended_at,
    title = excluded.title,
    category_name = excluded.category_name,
    peak_viewers = greatest(t.peak_viewers, excluded.peak_viewers),
    detected_by = t.detected_by,
    observed_late = excluded.observed_late,
    last_event_seq = excluded.last_event_seq,
    updated_at = excluded.updated_at
WHERE excluded.last_event_seq > t.last_event_seq`

func encodeEvents(evs []*kickmonv1.Event) []any {
	var (
		seq, uid                  []int64
		kind, source, state       []string
		kick                      []pgtype.Timestamptz
		observed                  []time.Time
		session, prevSlug, covers []pgtype.Text
	)
	var buf []byte
	for _, e := range evs {
		cov := pgtype.Text{}
		if c := e.GetCoverage(); c != nil {
			cov = pgtype.Text{String: string(appendCoverage(buf[:0], c)), Valid: true}
		}
		buf = appendStreamer(buf[:0], e.GetStreamer())
		st := string(buf)
		seq = append(seq, int64(e.GetSeq()))
		uid = append(uid, e.GetStreamer().GetBroadcasterUserId())
		kind = append(kind, KindName(e.GetKind()))
		source = append(source, SourceName(e.GetSource()))
		kick = append(kick, ts(e.GetKickTime()))
		observed = append(observed, e.GetObservedAt().AsTime())
		session = append(session, optText(batch.SessionOf(e).GetSessionId()))
		prevSlug = append(prevSlug, optText(e.GetPreviousSlug()))
		covers = append(covers, cov)
		state = append(state, st)
	}
	return []any{seq, uid, kind, source, kick, observed, session, prevSlug, covers, state}
}

const insertEvents = `
INSERT INTO kickmon.status_events (seq, broadcaster_user_id, kind, source, kick_time, observed_at,
    session_id, previous_slug, coverage, state)
SELECT u.seq, u.uid, u.kind, u.source, u.kick, u.observed, u.session, u.prev, u.cov::jsonb, u.state::jsonb
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
    $7::text[], $8::text[], $9::text[], $10::text[])
    AS u(seq, uid, kind, source, kick, observed, session, prev, cov, state)
ON CONFLICT (seq, observed_at) DO NOTHING`

func encodeCloses(cs []batch.GapClose) []any {
	var (
		uid, seq []int64
		source   []string
		end      []time.Time
	)
	for _, c := range cs {
		uid = append(uid, c.UserID)
		source = append(source, SourceName(c.Source))
		end = append(end, c.End)
		seq = append(seq, int64(c.CloseSeq))
	}
	return []any{uid, source, end, seq}
}

const closeGaps = `
UPDATE kickmon.coverage_gaps g SET ended_at = u.ended_at, closed_seq = u.closed_seq
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[]) AS u(uid, source, ended_at, closed_seq)
WHERE g.broadcaster_user_id = u.uid AND g.source = u.source AND g.ended_at IS NULL`

func encodeGaps(gs []batch.Gap) []any {
	var (
		uid, open  []int64
		closeSeq   []pgtype.Int8
		source, rs []string
		start      []time.Time
		end        []pgtype.Timestamptz
	)
	for _, g := range gs {
		uid = append(uid, g.UserID)
		source = append(source, SourceName(g.Source))
		start = append(start, g.Start)
		end = append(end, tsTime(g.End))
		rs = append(rs, g.Reason)
		open = append(open, int64(g.OpenSeq))
		closeSeq = append(closeSeq, optInt(int64(g.CloseSeq)))
	}
	return []any{uid, source, start, end, rs, open, closeSeq}
}

const openGaps = `
INSERT INTO kickmon.coverage_gaps (broadcaster_user_id, source, started_at, ended_at, reason, opened_seq, closed_seq)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::bigint[], $7::bigint[])
ON CONFLICT DO NOTHING`

const insertLost = `
INSERT INTO kickmon.coverage_gaps (source, started_at, ended_at, reason, first_seq, last_seq)
VALUES ('spool', (SELECT observed_at FROM kickmon.status_events WHERE seq = $1::bigint - 1),
    coalesce($2::timestamptz, now()), $3, $1, $4)`

// quarantineJSON renders an event for the quarantine table's jsonb column,
// which cannot hold NUL characters.
func quarantineJSON(e *kickmonv1.Event) string {
	b, err := jsonOpts.Marshal(e)
	if err != nil {
		return fmt.Sprintf(`{"seq": %d, "encode_error": %q}`, e.GetSeq(), err.Error())
	}
	return strings.ReplaceAll(string(b), `\u0000`, `\ufffd`)
}

func isInvalid(err error) bool {
	var ie *invalidError
	return errors.As(err, &ie)
}
