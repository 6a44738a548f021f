package store

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// status_events rows go in with COPY … FROM STDIN (FORMAT binary), whose
// stream is built here, ahead of the transaction (Prepare): the jsonb
// documents are written straight into it, so nothing is encoded twice and
// the transaction only sends bytes. COPY has no ON CONFLICT; the cursor
// lock makes a duplicate impossible unless someone rewound the cursor by
// hand, and then apply falls back to insertEvents.

// copyEvents is the COPY statement the stream is for; its columns are in
// the order appendEventRow writes them.
const copyEvents = `COPY kickmon.status_events (seq, broadcaster_user_id, kind, source, kick_time, observed_at,
    session_id, previous_slug, coverage, state) FROM STDIN (FORMAT binary)`

const eventColumns = 10

// copyHeader starts a binary COPY stream: signature, flags, no extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// jsonbVersion is the first byte of a jsonb value in binary format.
const jsonbVersion = 1

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's timestamp epoch, in Unix
// microseconds.
const pgEpochMicros = 946_684_800 * 1_000_000

// encodeEventsCopy returns the binary COPY stream of status_events rows
// for evs (one row each, ascending seq).
func encodeEventsCopy(evs []*kickmonv1.Event) []byte {
	b := make([]byte, 0, len(copyHeader)+len(evs)*640+2)
	b = append(b, copyHeader...)
	for _, e := range evs {
		b = appendEventRow(b, e)
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // trailer: -1 fields
}

func appendEventRow(b []byte, e *kickmonv1.Event) []byte {
	b = binary.BigEndian.AppendUint16(b, eventColumns)
	b = appendInt8(b, int64(e.GetSeq()))
	b = appendInt8(b, e.GetStreamer().GetBroadcasterUserId())
	b = appendText(b, KindName(e.GetKind()))
	b = appendText(b, SourceName(e.GetSource()))
	b = appendTimestamptz(b, e.GetKickTime())
	b = appendTimestamptz(b, e.GetObservedAt())
	b = appendOptText(b, batch.SessionOf(e).GetSessionId())
	b = appendOptText(b, e.GetPreviousSlug())
	if c := e.GetCoverage(); c != nil {
		at := len(b)
		b = append(b, 0, 0, 0, 0, jsonbVersion)
		b = appendCoverage(b, c)
		b = patchLen(b, at)
	} else {
		b = appendNull(b)
	}
	at := len(b)
	b = append(b, 0, 0, 0, 0, jsonbVersion)
	b = appendStreamer(b, e.GetStreamer())
	return patchLen(b, at)
}

// patchLen fills in the length word at b[at:] of the field that follows it.
func patchLen(b []byte, at int) []byte {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

func appendNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

func appendInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendOptText writes s, or NULL for "" (like optText).
func appendOptText(b []byte, s string) []byte {
	if s == "" {
		return appendNull(b)
	}
	return appendText(b, s)
}

// appendTimestamptz writes t as microseconds since 2000-01-01 UTC (the
// nanoseconds truncated, as pgx does), or NULL for nil.
func appendTimestamptz(b []byte, t *timestamppb.Timestamp) []byte {
	if t == nil {
		return appendNull(b)
	}
	us := t.GetSeconds()*1_000_000 + int64(t.GetNanos())/1000 - pgEpochMicros
	return appendInt8(b, us)
}

// params are a statement's arguments (arrays for unnest) encoded in binary
// ahead of the transaction, which then only sends them.
type params struct {
	values  [][]byte
	oids    []uint32
	formats []int16
}

// encodeParams encodes args, each a slice one of the encode* functions
// builds, as PostgreSQL arrays.
func encodeParams(m *pgtype.Map, args []any) (params, error) {
	p := params{values: make([][]byte, len(args)), oids: make([]uint32, len(args)), formats: make([]int16, len(args))}
	for i, a := range args {
		var oid uint32
		switch a.(type) {
		case []int64, []pgtype.Int8:
			oid = pgtype.Int8ArrayOID
		case []string, []pgtype.Text:
			oid = pgtype.TextArrayOID
		case []bool:
			oid = pgtype.BoolArrayOID
		case []time.Time, []pgtype.Timestamptz:
			oid = pgtype.TimestamptzArrayOID
		default:
			return p, fmt.Errorf("parameter $%d: no array type for %T", i+1, a)
		}
		v, err := m.Encode(oid, pgtype.BinaryFormatCode, a, nil)
		if err != nil {
			return p, fmt.Errorf("parameter $%d: %w", i+1, err)
		}
		p.values[i], p.oids[i], p.formats[i] = v, oid, pgtype.BinaryFormatCode
	}
	return p, nil
}

// typeMaps hold the pgx type maps encodeParams uses: one is not safe for
// concurrent use, and making one per batch would cost more than a small
// batch's encoding.
var typeMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}
