// Package spool is the collector's durable event log and watch-list
// snapshot: one bbolt file in KICKMON_STATE_DIR. An event is committed
// (fsync) before Append returns, so nothing is published that a crash could
// lose; seqs are monotonic across restarts and never reused.
//
// Retention: every unacknowledged event is kept, plus the most recent
// Options.KeepAcked acknowledged ones (so a watcher a little behind the
// writer's acks can still read them); older acknowledged events are deleted
// a bounded number per Append or Ack. Everything is bounded by
// Options.MaxBytes, measured as the live encoded size of the retained events
// (keys plus values) tracked in the file itself: a bbolt file never shrinks,
// so its size on disk is only an upper bound of what is retained (Stats
// reports both). When the bound forces unacknowledged events out, the oldest
// go first and the dropped range is recorded persistently (Lost) and logged.
//
// Identity: each spool file has a log id (a ULID) made when the file is
// created, or on the first open of a file from before log ids, and kept
// for the file's life. Seqs are meaningful only within one log id: a
// consumer whose cursor belongs to another log id must not apply it here.
//
// Corruption: bbolt panics on some kinds of page corruption. Open turns
// that into an error telling the operator to move the file aside, and so
// does every later call that finds a corrupt page (ErrCorrupt).
//
// Compaction: bbolt never gives freed pages back to the file system, so
// after an outage's backlog is acknowledged the file keeps its peak size.
// When most of the file is free (and it is at least
// Options.CompactMinBytes), the spool rewrites it into a new file and
// renames that over the old one, in the background; appends and reads wait
// for the rewrite (a few seconds per GiB).
//
// Bucket layout (format version 1):
//
//	meta       version, next_seq, acked_seq, acked_at (unix ns), live_bytes, log_id
//	events     8-byte big-endian seq → proto-encoded kickmonv1.Event
//	streamers  8-byte big-endian broadcaster_user_id → proto-encoded kickmonv1.Streamer
//	lost       8-byte big-endian first seq → 8-byte big-endian last seq
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FormatVersion is the on-disk format this package reads and writes.
const FormatVersion = 1

// Defaults for Options.
const (
	DefaultMaxBytes  = 1 << 30 // 1 GiB
	DefaultKeepAcked = 10000
	// pruneBatch bounds how many acknowledged events one Append or Ack
	// deletes, so an ack of a long backlog never stalls a call.
	pruneBatch = 1000
	// DefaultCompactMinBytes is the smallest file worth compacting.
	DefaultCompactMinBytes = 64 << 20
	// compactTxBytes bounds one transaction of a compaction's copy.
	compactTxBytes = 16 << 20
)

var (
	// ErrOutOfRange is matched (errors.Is) by the error of a Read whose
	// from is older than the oldest retained event; see OutOfRangeError.
	ErrOutOfRange = errors.New("seq out of range")
	// ErrAckBeyondLast is returned by Ack for a seq that was never written.
	ErrAckBeyondLast = errors.New("ack beyond last seq")
	// ErrClosed is returned by calls on a closed spool.
	ErrClosed = errors.New("spool is closed")
	// ErrCorrupt is matched (errors.Is) by the error of any call that found
	// the file corrupt; the error says to move the file aside.
	ErrCorrupt = errors.New("spool is corrupt")
)

// OutOfRangeError says which seq was asked for and which is the oldest
// retained; errors.Is(err, ErrOutOfRange) is true for it.
type OutOfRangeError struct {
	From  uint64 // the seq asked for
	First uint64 // the oldest retained seq (LastSeq+1 when nothing is retained)
}

func (e *OutOfRangeError) Error() string {
	return fmt.Sprintf("seq %d was dropped; oldest retained is %d", e.From, e.First)
}

// Is makes errors.Is(err, ErrOutOfRange) true.
func (e *OutOfRangeError) Is(target error) bool { return target == ErrOutOfRange }

// ErrBeyondLast is matched (errors.Is) by the error of a Read whose from is
// beyond the next seq to be written; see BeyondLastError.
var ErrBeyondLast = errors.New("seq beyond the log")

// BeyondLastError says a Read asked for a seq after LastSeq+1: the reader
// followed another log (one moved aside and started anew).
type BeyondLastError struct {
	From uint64 // the seq asked for
	Last uint64 // the newest seq written
}

func (e *BeyondLastError) Error() string {
	return fmt.Sprintf("seq %d is beyond the last seq %d", e.From, e.Last)
}

// Is makes errors.Is(err, ErrBeyondLast) true.
func (e *BeyondLastError) Is(target error) bool { return target == ErrBeyondLast }

var (
	bucketMeta      = []byte("meta")
	bucketEvents    = []byte("events")
	bucketStreamers = []byte("streamers")
	bucketLost      = []byte("lost")

	keyVersion   = []byte("version")
	keyNextSeq   = []byte("next_seq")
	keyAckedSeq  = []byte("acked_seq")
	keyAckedAt   = []byte("acked_at")
	keyLiveBytes = []byte("live_bytes")
	keyLogID     = []byte("log_id")
)

// Options tune a spool; zero values take the defaults.
type Options struct {
	// MaxBytes bounds the live encoded size of retained events (default 1 GiB).
	MaxBytes int64
	// KeepAcked is how many acknowledged events stay readable after the
	// ack (default 10000; negative keeps none).
	KeepAcked int
	// Logger receives warnings about dropped events (default: discard).
	Logger *slog.Logger
	// CompactMinBytes is the smallest file compacted when most of it is
	// free (default DefaultCompactMinBytes; negative never compacts).
	CompactMinBytes int64
}

// Stats describes the spool.
type Stats struct {
	Path      string
	LogID     string
	LiveBytes int64 // encoded size of retained events, compared with MaxBytes
	FileBytes int64 // size of the bbolt file (shrinks only by compaction)
	MaxBytes  int64
	FirstSeq  uint64 // oldest retained seq, 0 when nothing is retained
	LastSeq   uint64 // newest seq written, 0 if none ever
	AckedSeq  uint64
	AckedAt   time.Time // zero until the first ack
	Lost      []*kickmonv1.SeqRange
}

// Spool is the durable event log. It is safe for concurrent use; writes
// (Append, Ack) are serialized, reads run concurrently with them.
type Spool struct {
	path       string
	logID      string
	maxBytes   int64
	keepAcked  uint64
	compactMin int64
	log        *slog.Logger

	writeMu sync.Mutex // serializes Append, Ack and compaction

	dbMu sync.RWMutex // held for writing only while compaction swaps db
	db   *bolt.DB

	compacting atomic.Bool
	bg         sync.WaitGroup // the compaction goroutine; Close waits

	mu      sync.Mutex // guards the fields below, a copy of committed state
	state   state
	lost    []*kickmonv1.SeqRange
	changed chan struct{}
	closed  bool
}

// state is the committed metadata, mirrored in memory.
type state struct {
	first, last, acked uint64 // first: oldest retained, last+1 when none
	ackedAt            time.Time
	live               int64
}

// Open opens or creates the spool file at path. A file that is corrupt, not
// a spool, of a newer format, or locked by another process is an error
// naming the file; it is never reset.
func Open(path string, opts Options) (sp *Spool, err error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.KeepAcked == 0 {
		opts.KeepAcked = DefaultKeepAcked
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CompactMinBytes == 0 {
		opts.CompactMinBytes = DefaultCompactMinBytes
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: create directory: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("spool %s is locked by another process (is another kickcollector running?)", path)
	case err != nil:
		return nil, corrupt(path, err)
	}
	s := &Spool{
		db:         db,
		path:       path,
		maxBytes:   opts.MaxBytes,
		keepAcked:  uint64(max(opts.KeepAcked, 0)),
		compactMin: opts.CompactMinBytes,
		log:        opts.Logger.With(logkeys.Component, "spool", logkeys.Path, path),
		changed:    make(chan struct{}),
	}
	defer func() {
		// bbolt panics on some kinds of page corruption; a spool that
		// cannot be read is a start-up error, not a crash.
		if r := recover(); r != nil {
			err = corrupt(path, fmt.Errorf("%v", r))
		}
		if err != nil {
			_ = db.Close()
		}
	}()
	if err := db.Update(s.initTx); err != nil {
		return nil, err
	}
	if s.shouldCompact() { // a safe point: nobody reads or writes yet
		if err := s.compact(); err != nil {
			s.log.Warn("spool compaction failed; continuing with the file as it is", logkeys.Err, err.Error())
		}
	}
	return s, nil
}

// corruptError is a spool file bbolt cannot read.
type corruptError struct {
	path string
	err  error
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("spool %s is unreadable: %v (if it is corrupt, move it aside to start an empty spool; unacknowledged events in it are lost)", e.path, e.err)
}

func (e *corruptError) Unwrap() []error { return []error{ErrCorrupt, e.err} }

func corrupt(path string, err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return &corruptError{path: path, err: err}
}

// view and update run fn in a read or write transaction of the current
// file. bbolt panics on some page corruption found while reading (it rolls
// the transaction back first); that becomes the same error Open gives, not
// a crash.
func (s *Spool) view(fn func(*bolt.Tx) error) error { return s.txn(false, fn) }

func (s *Spool) update(fn func(*bolt.Tx) error) error { return s.txn(true, fn) }

func (s *Spool) txn(write bool, fn func(*bolt.Tx) error) (err error) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(s.path, fmt.Errorf("bbolt: %v", r))
		}
	}()
	if write {
		return s.db.Update(fn)
	}
	return s.db.View(fn)
}

// initTx creates a new spool's buckets, or checks an existing one and loads
// its state.
func (s *Spool) initTx(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return fmt.Errorf("spool %s: not a kickmon spool (no meta bucket)", s.path)
		}
		for _, name := range [][]byte{bucketMeta, bucketEvents, bucketStreamers, bucketLost} {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("spool %s: create bucket %s: %w", s.path, name, err)
			}
		}
		meta = tx.Bucket(bucketMeta)
		if err := putU64(meta, keyVersion, FormatVersion); err != nil {
			return fmt.Errorf("spool %s: %w", s.path, err)
		}
		if err := putU64(meta, keyNextSeq, 1); err != nil {
			return fmt.Errorf("spool %s: %w", s.path, err)
		}
	}
	// A spool from before log ids gets one now and keeps it: its seqs go
	// on, so a consumer's cursor stays valid across the upgrade.
	if id := meta.Get(keyLogID); len(id) > 0 {
		s.logID = string(id)
	} else {
		s.logID = ulid.Make().String()
		if err := meta.Put(keyLogID, []byte(s.logID)); err != nil {
			return fmt.Errorf("spool %s: store log id: %w", s.path, err)
		}
	}
	version, ok := getU64(meta, keyVersion)
	switch {
	case !ok:
		return corrupt(s.path, errors.New("no format version"))
	case version > FormatVersion:
		return fmt.Errorf("spool %s has format version %d, newer than this kickcollector supports (%d); run a newer kickcollector", s.path, version, FormatVersion)
	case version < 1:
		return corrupt(s.path, fmt.Errorf("format version %d", version))
	}
	for _, name := range [][]byte{bucketEvents, bucketStreamers, bucketLost} {
		if tx.Bucket(name) == nil {
			return corrupt(s.path, fmt.Errorf("missing bucket %s", name))
		}
	}
	st, err := loadState(tx)
	if err != nil {
		return corrupt(s.path, err)
	}
	var lost []*kickmonv1.SeqRange
	err = tx.Bucket(bucketLost).ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) != 8 {
			return fmt.Errorf("lost range with key of %d bytes, value of %d bytes", len(k), len(v))
		}
		lost = append(lost, &kickmonv1.SeqRange{First: binary.BigEndian.Uint64(k), Last: binary.BigEndian.Uint64(v)})
		return nil
	})
	if err != nil {
		return corrupt(s.path, err)
	}
	s.state, s.lost = st, lost
	return nil
}

// loadState reads the committed metadata in tx.
func loadState(tx *bolt.Tx) (state, error) {
	meta := tx.Bucket(bucketMeta)
	next, ok := getU64(meta, keyNextSeq)
	if !ok || next == 0 {
		return state{}, errors.New("no next seq")
	}
	st := state{last: next - 1, first: next}
	st.acked, _ = getU64(meta, keyAckedSeq)
	if ns, ok := getU64(meta, keyAckedAt); ok && ns != 0 {
		st.ackedAt = time.Unix(0, int64(ns))
	}
	live, _ := getU64(meta, keyLiveBytes)
	st.live = int64(live)
	if k, _ := tx.Bucket(bucketEvents).Cursor().First(); k != nil {
		if len(k) != 8 {
			return state{}, fmt.Errorf("event key of %d bytes", len(k))
		}
		st.first = binary.BigEndian.Uint64(k)
	}
	if st.acked > st.last || st.first > next {
		return state{}, fmt.Errorf("inconsistent seqs: first %d, last %d, acked %d", st.first, st.last, st.acked)
	}
	return st, nil
}

// Path is the spool file.
func (s *Spool) Path() string { return s.path }

// LogID identifies this event log (see the package doc).
func (s *Spool) LogID() string { return s.logID }

// Close closes the file and wakes every Changed channel; it waits for a
// compaction in progress.
func (s *Spool) Close() error {
	defer s.bg.Wait()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.changed)
	s.mu.Unlock()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close spool %s: %w", s.path, err)
	}
	return nil
}

// Changed returns a channel that is closed at the next committed change
// (Append, Ack) or at Close. Take it before reading, so no change is missed:
//
//	ch := s.Changed(); evs, err := s.Read(next, n); if len(evs) == 0 { <-ch }
func (s *Spool) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// commit installs the new committed state and wakes waiters.
func (s *Spool) commit(st state, lost []*kickmonv1.SeqRange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.lost = st, lost
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Spool) snapshot() (state, []*kickmonv1.SeqRange, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.lost, s.closed
}

// Append assigns the next seqs to events (in place), stores them and, in
// the same transaction, updates the streamer snapshot from each event's
// Streamer (a removed streamer is deleted from it). It returns after the
// transaction is on disk. On error no seq is consumed and the events' Seq
// fields are restored.
func (s *Spool) Append(events []*kickmonv1.Event) error {
	if len(events) == 0 {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	st, lost, closed := s.snapshot()
	if closed {
		return ErrClosed
	}
	old := make([]uint64, len(events))
	for i, e := range events {
		old[i] = e.GetSeq()
	}
	var dropped *kickmonv1.SeqRange
	err := s.update(func(tx *bolt.Tx) error {
		evb, stb := tx.Bucket(bucketEvents), tx.Bucket(bucketStreamers)
		for _, e := range events {
			st.last++
			e.Seq = st.last
			v, err := proto.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode event %d: %w", e.Seq, err)
			}
			if err := evb.Put(u64(e.Seq), v); err != nil {
				return fmt.Errorf("store event %d: %w", e.Seq, err)
			}
			st.live += int64(8 + len(v))
			if err := putStreamer(stb, e.GetStreamer()); err != nil {
				return err
			}
		}
		var err error
		if err = s.pruneAcked(tx, &st); err != nil {
			return err
		}
		if dropped, err = s.enforceMax(tx, &st); err != nil {
			return err
		}
		if dropped != nil {
			if lost, err = recordLost(tx, lost, dropped); err != nil {
				return err
			}
		}
		return putState(tx, st)
	})
	if err != nil {
		for i, e := range events {
			e.Seq = old[i]
		}
		if errors.Is(err, ErrCorrupt) {
			return err
		}
		return fmt.Errorf("spool %s: append %d events: %w", s.path, len(events), err)
	}
	s.commit(st, lost)
	if dropped != nil {
		s.log.Warn("spool full: dropped unacknowledged events",
			logkeys.First, dropped.First, logkeys.Last, dropped.Last,
			logkeys.Bytes, st.live, logkeys.MaxBytes, s.maxBytes)
	}
	return nil
}

func putStreamer(b *bolt.Bucket, st *kickmonv1.Streamer) error {
	if st == nil {
		return nil
	}
	key := u64(uint64(st.GetBroadcasterUserId()))
	if st.GetRemoved() {
		if err := b.Delete(key); err != nil {
			return fmt.Errorf("delete streamer %d: %w", st.GetBroadcasterUserId(), err)
		}
		return nil
	}
	v, err := proto.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode streamer %d: %w", st.GetBroadcasterUserId(), err)
	}
	if err := b.Put(key, v); err != nil {
		return fmt.Errorf("store streamer %d: %w", st.GetBroadcasterUserId(), err)
	}
	return nil
}

// pruneAcked deletes up to pruneBatch of the oldest acknowledged events
// beyond the KeepAcked most recent ones.
func (s *Spool) pruneAcked(tx *bolt.Tx, st *state) error {
	if st.acked <= s.keepAcked {
		return nil
	}
	limit := st.acked - s.keepAcked // delete seqs <= limit
	return deleteOldest(tx, st, pruneBatch, func(seq uint64, _ int64) bool { return seq <= limit })
}

// enforceMax deletes the oldest events while the live size exceeds
// maxBytes, always keeping the newest event. It returns the range of
// unacknowledged events it dropped, if any.
func (s *Spool) enforceMax(tx *bolt.Tx, st *state) (*kickmonv1.SeqRange, error) {
	var dropped *kickmonv1.SeqRange
	err := deleteOldest(tx, st, -1, func(seq uint64, _ int64) bool {
		if st.live <= s.maxBytes || seq >= st.last {
			return false
		}
		if seq > st.acked {
			if dropped == nil {
				dropped = &kickmonv1.SeqRange{First: seq}
			}
			dropped.Last = seq
		}
		return true
	})
	return dropped, err
}

// deleteOldest deletes events from the oldest while del says so, at most
// limit of them (limit < 0: no limit), keeping st.first and st.live exact.
func deleteOldest(tx *bolt.Tx, st *state, limit int, del func(seq uint64, size int64) bool) error {
	c := tx.Bucket(bucketEvents).Cursor()
	for k, v := c.First(); k != nil && limit != 0; limit-- {
		seq, size := binary.BigEndian.Uint64(k), int64(len(k)+len(v))
		if !del(seq, size) {
			break
		}
		if err := c.Delete(); err != nil {
			return fmt.Errorf("delete event %d: %w", seq, err)
		}
		st.live -= size
		st.first = seq + 1
		// After Delete the cursor may point at the next item or not; seek
		// again for a well-defined position.
		k, v = c.Seek(u64(seq + 1))
	}
	return nil
}

// recordLost adds r to the persistent lost ranges, merging it with the last
// range when they touch, and returns the new list.
func recordLost(tx *bolt.Tx, lost []*kickmonv1.SeqRange, r *kickmonv1.SeqRange) ([]*kickmonv1.SeqRange, error) {
	b := tx.Bucket(bucketLost)
	out := make([]*kickmonv1.SeqRange, len(lost), len(lost)+1)
	copy(out, lost)
	if n := len(out); n > 0 && out[n-1].GetLast()+1 == r.GetFirst() {
		out[n-1] = &kickmonv1.SeqRange{First: out[n-1].GetFirst(), Last: r.GetLast()}
	} else {
		out = append(out, proto.Clone(r).(*kickmonv1.SeqRange))
	}
	last := out[len(out)-1]
	if err := b.Put(u64(last.GetFirst()), u64(last.GetLast())); err != nil {
		return nil, fmt.Errorf("record lost range %d-%d: %w", last.GetFirst(), last.GetLast(), err)
	}
	return out, nil
}

func putState(tx *bolt.Tx, st state) error {
	meta := tx.Bucket(bucketMeta)
	var ackedAt uint64
	if !st.ackedAt.IsZero() {
		ackedAt = uint64(st.ackedAt.UnixNano())
	}
	for _, kv := range []struct {
		k []byte
		v uint64
	}{{keyNextSeq, st.last + 1}, {keyAckedSeq, st.acked}, {keyAckedAt, ackedAt}, {keyLiveBytes, uint64(st.live)}} {
		if err := putU64(meta, kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// Read returns retained events with seq >= from, in order, at most max of
// them (max <= 0 means 1). from 0 means the oldest retained event. It is an
// *OutOfRangeError (errors.Is ErrOutOfRange) when from is older than the
// oldest retained event; from beyond the last seq returns nothing.
func (s *Spool) Read(from uint64, max int) ([]*kickmonv1.Event, error) {
	if max <= 0 {
		max = 1
	}
	var out []*kickmonv1.Event
	err := s.view(func(tx *bolt.Tx) error {
		st, err := loadState(tx)
		if err != nil {
			return err
		}
		if from == 0 {
			from = st.first
		}
		if from < st.first {
			return &OutOfRangeError{From: from, First: st.first}
		}
		if from > st.last+1 {
			return &BeyondLastError{From: from, Last: st.last}
		}
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(u64(from)); k != nil && len(out) < max; k, v = c.Next() {
			e := &kickmonv1.Event{}
			if err := proto.Unmarshal(v, e); err != nil {
				return fmt.Errorf("decode event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	switch {
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return nil, ErrClosed
	case errors.Is(err, ErrOutOfRange), errors.Is(err, ErrBeyondLast), errors.Is(err, ErrCorrupt):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("spool %s: read from %d: %w", s.path, from, err)
	}
	return out, nil
}

// Ack records that every event up to seq is durably stored downstream.
// Acks never move backwards (an older seq is not an error and changes
// nothing); a seq beyond LastSeq is ErrAckBeyondLast. It returns the acked
// seq after the call. Acknowledged events beyond the KeepAcked most recent
// are deleted, a bounded number per call.
func (s *Spool) Ack(seq uint64) (uint64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	st, lost, closed := s.snapshot()
	switch {
	case closed:
		return 0, ErrClosed
	case seq > st.last:
		return st.acked, fmt.Errorf("%w: ack of seq %d, last seq is %d", ErrAckBeyondLast, seq, st.last)
	case seq <= st.acked && (st.acked <= s.keepAcked || st.first > st.acked-s.keepAcked):
		return st.acked, nil // nothing to record or prune
	}
	if seq > st.acked {
		st.acked, st.ackedAt = seq, time.Now()
	}
	err := s.update(func(tx *bolt.Tx) error {
		if err := s.pruneAcked(tx, &st); err != nil {
			return err
		}
		return putState(tx, st)
	})
	if errors.Is(err, ErrCorrupt) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("spool %s: ack %d: %w", s.path, seq, err)
	}
	s.commit(st, lost)
	s.compactInBackground()
	return st.acked, nil
}

// Streamers returns the watch-list snapshot, ordered by broadcaster_user_id:
// the Streamer of the latest event of every streamer not removed.
func (s *Spool) Streamers() ([]*kickmonv1.Streamer, error) {
	var out []*kickmonv1.Streamer
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStreamers).ForEach(func(k, v []byte) error {
			st := &kickmonv1.Streamer{}
			if err := proto.Unmarshal(v, st); err != nil {
				return fmt.Errorf("decode streamer %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, st)
			return nil
		})
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return nil, ErrClosed
	}
	if errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("spool %s: read streamers: %w", s.path, err)
	}
	return out, nil
}

// FirstSeq is the oldest retained seq (LastSeq+1 when nothing is retained).
func (s *Spool) FirstSeq() uint64 {
	st, _, _ := s.snapshot()
	return st.first
}

// LastSeq is the newest seq written, 0 if none ever.
func (s *Spool) LastSeq() uint64 {
	st, _, _ := s.snapshot()
	return st.last
}

// Lost returns every range of unacknowledged events dropped because of
// MaxBytes, oldest first.
func (s *Spool) Lost() []*kickmonv1.SeqRange {
	_, lost, _ := s.snapshot()
	out := make([]*kickmonv1.SeqRange, len(lost))
	for i, r := range lost {
		out[i] = proto.Clone(r).(*kickmonv1.SeqRange)
	}
	return out
}

// Stats describes the spool.
func (s *Spool) Stats() Stats {
	st, _, _ := s.snapshot()
	out := Stats{
		Path:      s.path,
		LogID:     s.logID,
		LiveBytes: st.live,
		MaxBytes:  s.maxBytes,
		LastSeq:   st.last,
		AckedSeq:  st.acked,
		AckedAt:   st.ackedAt,
		Lost:      s.Lost(),
	}
	if st.first <= st.last {
		out.FirstSeq = st.first
	}
	if fi, err := os.Stat(s.path); err == nil {
		out.FileBytes = fi.Size()
	}
	return out
}

// Status is Stats as the API's SpoolStatus; size_bytes is the live size
// compared with max_bytes.
func (s *Spool) Status() *kickmonv1.SpoolStatus {
	st := s.Stats()
	out := &kickmonv1.SpoolStatus{
		Path:      st.Path,
		SizeBytes: st.LiveBytes,
		MaxBytes:  st.MaxBytes,
		FirstSeq:  st.FirstSeq,
		LastSeq:   st.LastSeq,
		AckedSeq:  st.AckedSeq,
		Lost:      st.Lost,
		LogId:     st.LogID,
	}
	if !st.AckedAt.IsZero() {
		out.AckedAt = timestamppb.New(st.AckedAt)
	}
	if at, ok := s.oldestUnacked(); ok {
		out.OldestUnackedAt = timestamppb.New(at)
	}
	return out
}

// oldestUnacked is when the oldest retained unacknowledged event was
// observed; false when every retained event is acknowledged.
func (s *Spool) oldestUnacked() (time.Time, bool) {
	st, _, _ := s.snapshot()
	from := max(st.acked+1, st.first)
	if from > st.last {
		return time.Time{}, false
	}
	evs, err := s.Read(from, 1)
	if err != nil || len(evs) == 0 {
		return time.Time{}, false
	}
	return evs[0].GetObservedAt().AsTime(), evs[0].GetObservedAt() != nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func putU64(b *bolt.Bucket, k []byte, v uint64) error {
	if err := b.Put(k, u64(v)); err != nil {
		return fmt.Errorf("store %s: %w", k, err)
	}
	return nil
}

func getU64(b *bolt.Bucket, k []byte) (uint64, bool) {
	v := b.Get(k)
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}
