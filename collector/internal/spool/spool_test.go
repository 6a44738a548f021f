package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// childEnv makes the test binary act as a collector that appends, acks and
// then waits to be killed (see TestKillAndRestart).
const childEnv = "KICKMON_SPOOL_TEST_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(runChild(path))
	}
	goleak.VerifyTestMain(m)
}

// runChild appends 10 events, acks 4, appends 5 more without acking,
// prints "ready" and blocks until killed.
func runChild(path string) int {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.Append(events(1, 10)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := s.Ack(4); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.Append(events(1, 5)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	select {}
}

// events makes n STREAM_UPDATED events for user userID, titled by index.
func events(userID int64, n int) []*kickmonv1.Event {
	out := make([]*kickmonv1.Event, n)
	for i := range out {
		out[i] = &kickmonv1.Event{
			Kind:   kickmonv1.EventKind_EVENT_KIND_STREAM_UPDATED,
			Source: kickmonv1.Source_SOURCE_POLL,
			Streamer: &kickmonv1.Streamer{
				BroadcasterUserId: userID,
				Slug:              fmt.Sprintf("user%d", userID),
				Title:             fmt.Sprintf("title %d", i),
				State:             kickmonv1.LiveState_LIVE_STATE_LIVE,
			},
		}
	}
	return out
}

func seqs(evs []*kickmonv1.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.GetSeq()
	}
	return out
}

func seqRange(first, last uint64) []uint64 {
	var out []uint64
	for s := first; s <= last; s++ {
		out = append(out, s)
	}
	return out
}

func open(t *testing.T, path string, opts Options) *Spool {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustAppend(t *testing.T, s *Spool, evs []*kickmonv1.Event) {
	t.Helper()
	if err := s.Append(evs); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func mustRead(t *testing.T, s *Spool, from uint64, max int) []*kickmonv1.Event {
	t.Helper()
	evs, err := s.Read(from, max)
	if err != nil {
		t.Fatalf("Read(%d, %d): %v", from, max, err)
	}
	return evs
}

func TestAppendRead(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"), Options{})
	in := events(7, 5)
	mustAppend(t, s, in)
	if diff := cmp.Diff(seqRange(1, 5), seqs(in)); diff != "" {
		t.Errorf("assigned seqs (-want +got):\n%s", diff)
	}
	tests := []struct {
		name string
		from uint64
		max  int
		want []uint64
	}{
		{"from 0 is the oldest", 0, 100, seqRange(1, 5)},
		{"from the middle", 3, 100, seqRange(3, 5)},
		{"limited", 2, 2, []uint64{2, 3}},
		{"just past the end", 6, 100, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustRead(t, s, tt.from, tt.max)
			if diff := cmp.Diff(tt.want, seqs(got)); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
	// Beyond the next seq is another log's position, not a wait.
	if _, err := s.Read(100, 100); !errors.Is(err, ErrBeyondLast) || !strings.Contains(err.Error(), "seq 100 is beyond the last seq 5") {
		t.Errorf("Read(100) = %v, want ErrBeyondLast", err)
	}
	got := mustRead(t, s, 1, 100)
	if diff := cmp.Diff(in, got, protocmp.Transform()); diff != "" {
		t.Errorf("events round trip (-want +got):\n%s", diff)
	}
}

func TestSeqContinuesAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, events(1, 3))
	if _, err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	if got, want := s.Stats().AckedSeq, uint64(3); got != want {
		t.Errorf("acked after reopen = %d, want %d", got, want)
	}
	next := events(1, 2)
	mustAppend(t, s, next)
	if diff := cmp.Diff([]uint64{4, 5}, seqs(next)); diff != "" {
		t.Errorf("seqs after reopen (-want +got):\n%s", diff)
	}
}

// TestKillAndRestart kills a process holding the spool with SIGKILL after
// it appended and acked, then checks the seq continues and only the
// unacknowledged events are read past the ack.
func TestKillAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said %q, %v; stderr: %s", line, err, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s := open(t, path, Options{})
	st := s.Stats()
	if st.LastSeq != 15 || st.AckedSeq != 4 {
		t.Errorf("after kill: last %d acked %d, want 15 and 4", st.LastSeq, st.AckedSeq)
	}
	if diff := cmp.Diff(seqRange(5, 15), seqs(mustRead(t, s, st.AckedSeq+1, 100))); diff != "" {
		t.Errorf("unacknowledged events after restart (-want +got):\n%s", diff)
	}
	next := events(1, 1)
	mustAppend(t, s, next)
	if got := next[0].GetSeq(); got != 16 {
		t.Errorf("first seq after restart = %d, want 16", got)
	}
}

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
	}{
		{
			name: "garbage bytes",
			prepare: func(t *testing.T, path string) {
				writeFile(t, path, bytes.Repeat([]byte("not a bolt file "), 4096))
			},
			want: "is unreadable",
		},
		{
			name:    "too short",
			prepare: func(t *testing.T, path string) { writeFile(t, path, []byte("hello")) },
			want:    "is unreadable",
		},
		{
			name: "another bbolt file",
			prepare: func(t *testing.T, path string) {
				boltUpdate(t, path, func(tx *bolt.Tx) error {
					_, err := tx.CreateBucket([]byte("something else"))
					return err
				})
			},
			want: "not a kickmon spool",
		},
		{
			name: "newer format",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				_ = s.Close()
				boltUpdate(t, path, func(tx *bolt.Tx) error {
					return putU64(tx.Bucket(bucketMeta), keyVersion, FormatVersion+1)
				})
			},
			want: "newer than this kickcollector supports",
		},
		{
			name: "missing bucket",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				_ = s.Close()
				boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketEvents) })
			},
			want: "missing bucket events",
		},
		{
			name: "locked by another process",
			prepare: func(t *testing.T, path string) {
				s, err := Open(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
			},
			want: "locked by another process",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool.db")
			tt.prepare(t, path)
			s, err := Open(path, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s and say %q", err, path, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func boltUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestAck(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"), Options{KeepAcked: 2})
	mustAppend(t, s, events(1, 10))
	steps := []struct {
		name      string
		ack       uint64
		wantAcked uint64
		wantErr   error
		wantFirst uint64 // oldest retained after the step
	}{
		{"first ack keeps the last 2 acked", 5, 5, nil, 4},
		{"backwards is ignored", 3, 5, nil, 4},
		{"same again", 5, 5, nil, 4},
		{"beyond last is an error", 11, 5, ErrAckBeyondLast, 4},
		{"everything", 10, 10, nil, 9},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := s.Ack(st.ack)
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("Ack(%d) error = %v, want %v", st.ack, err, st.wantErr)
			}
			if got != st.wantAcked {
				t.Errorf("Ack(%d) = %d, want %d", st.ack, got, st.wantAcked)
			}
			if got := s.FirstSeq(); got != st.wantFirst {
				t.Errorf("first seq = %d, want %d", got, st.wantFirst)
			}
			if _, err := s.Read(st.wantFirst-1, 1); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("Read(%d) error = %v, want ErrOutOfRange", st.wantFirst-1, err)
			}
		})
	}
	if s.Stats().AckedAt.IsZero() {
		t.Error("acked_at not set")
	}
}

func TestAckPrunesBoundedPerCall(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"), Options{KeepAcked: -1})
	n := pruneBatch*2 + 10
	mustAppend(t, s, events(1, n))
	if _, err := s.Ack(uint64(n)); err != nil {
		t.Fatal(err)
	}
	if got, want := s.FirstSeq(), uint64(pruneBatch+1); got != want {
		t.Errorf("after one ack first seq = %d, want %d (one batch pruned)", got, want)
	}
	for range 2 { // repeated acks finish the pruning
		if _, err := s.Ack(uint64(n)); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.FirstSeq != 0 || st.LiveBytes != 0 {
		t.Errorf("after pruning: first %d, live bytes %d; want 0, 0", st.FirstSeq, st.LiveBytes)
	}
	next := events(1, 1)
	mustAppend(t, s, next)
	if diff := cmp.Diff([]uint64{uint64(n + 1)}, seqs(mustRead(t, s, 0, 10))); diff != "" {
		t.Errorf("read after full prune (-want +got):\n%s", diff)
	}
}

func TestMaxBytesDropsOldestAndRecordsLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	one := events(1, 1)
	mustSize := func() int64 {
		s := open(t, filepath.Join(t.TempDir(), "size.db"), Options{})
		mustAppend(t, s, one)
		return s.Stats().LiveBytes
	}()
	// Room for exactly 5 events.
	s, err := Open(path, Options{MaxBytes: 5 * mustSize, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, events(1, 5))
	if _, err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, events(1, 4)) // 9 events: 1-2 acked go first, then 3-4 are lost
	mustAppend(t, s, events(1, 1)) // 10: 5 lost, merged with 3-4
	wantLost := []*kickmonv1.SeqRange{{First: 3, Last: 5}}
	if diff := cmp.Diff(wantLost, s.Lost(), protocmp.Transform()); diff != "" {
		t.Errorf("lost (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(seqRange(6, 10), seqs(mustRead(t, s, 0, 100))); diff != "" {
		t.Errorf("retained (-want +got):\n%s", diff)
	}
	var oor *OutOfRangeError
	if _, err := s.Read(3, 10); !errors.As(err, &oor) || oor.First != 6 {
		t.Errorf("Read(3) = %v, want OutOfRangeError with first 6", err)
	}
	if st := s.Stats(); st.LiveBytes > st.MaxBytes {
		t.Errorf("live bytes %d > max %d", st.LiveBytes, st.MaxBytes)
	}
	if !strings.Contains(logs.String(), "dropped unacknowledged events") {
		t.Errorf("no warning logged; logs: %s", logs.String())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{MaxBytes: 5 * mustSize})
	if diff := cmp.Diff(wantLost, s.Status().GetLost(), protocmp.Transform()); diff != "" {
		t.Errorf("lost after reopen (-want +got):\n%s", diff)
	}
	mustAppend(t, s, events(1, 1)) // 11: 6 lost, merged again
	if diff := cmp.Diff([]*kickmonv1.SeqRange{{First: 3, Last: 6}}, s.Lost(), protocmp.Transform()); diff != "" {
		t.Errorf("lost after reopen and append (-want +got):\n%s", diff)
	}
}

func TestMaxBytesKeepsNewestEvent(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"), Options{MaxBytes: 1})
	mustAppend(t, s, events(1, 3))
	if diff := cmp.Diff([]uint64{3}, seqs(mustRead(t, s, 0, 10))); diff != "" {
		t.Errorf("retained (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*kickmonv1.SeqRange{{First: 1, Last: 2}}, s.Lost(), protocmp.Transform()); diff != "" {
		t.Errorf("lost (-want +got):\n%s", diff)
	}
}

func TestStreamersSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := events(1, 2)
	b := events(2, 1)
	c := events(3, 1)
	removed := events(3, 1)
	removed[0].Kind = kickmonv1.EventKind_EVENT_KIND_STREAMER_REMOVED
	removed[0].Streamer.Removed = true
	noStreamer := []*kickmonv1.Event{{Kind: kickmonv1.EventKind_EVENT_KIND_COVERAGE_CHANGED}}
	for _, evs := range [][]*kickmonv1.Event{a, b, c, removed, noStreamer} {
		mustAppend(t, s, evs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	got, err := s.Streamers()
	if err != nil {
		t.Fatal(err)
	}
	want := []*kickmonv1.Streamer{a[1].GetStreamer(), b[0].GetStreamer()}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
}

func TestChangedAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("changed before any append")
	default:
	}
	mustAppend(t, s, events(1, 1))
	<-ch // closed by the append; blocks forever (test timeout) otherwise
	ch = s.Changed()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	<-ch
	if err := s.Append(events(1, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Read(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Ack(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close = %v, want ErrClosed", err)
	}
}

func TestAppendErrorRestoresSeqs(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"), Options{})
	bad := events(1, 2)
	bad[1].Streamer.Slug = string([]byte{0xff}) // invalid UTF-8: proto.Marshal fails
	err := s.Append(bad)
	if err == nil {
		t.Fatal("Append of an unencodable event succeeded")
	}
	if diff := cmp.Diff([]uint64{0, 0}, seqs(bad)); diff != "" {
		t.Errorf("seqs after failed append (-want +got):\n%s", diff)
	}
	good := events(1, 1)
	mustAppend(t, s, good)
	if got := good[0].GetSeq(); got != 1 {
		t.Errorf("seq after failed append = %d, want 1", got)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "spool.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			evs := events(1, batch)
			n := 0
			for b.Loop() {
				for _, e := range evs {
					e.Seq = 0
				}
				if err := s.Append(evs); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkOpen100k measures opening a spool holding 100k streamers'
// snapshots after churn (a cold start's first step).
func BenchmarkOpen100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "spool.db")
	s, err := Open(path, Options{KeepAcked: 1})
	if err != nil {
		b.Fatal(err)
	}
	fillChurned(b, s)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Open(path, Options{KeepAcked: 1})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend100k measures appends of 10 events to a spool holding
// 100k streamers' snapshots after churn (every event rewrites its
// streamer's snapshot, so the file has many free pages, as the collector's
// at 100k streamers does).
func BenchmarkAppend100k(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "spool.db"), Options{KeepAcked: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fillChurned(b, s)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Append(churn(i*7919, 10, 991)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	st := s.db.Stats()
	b.ReportMetric(float64(st.FreePageN+st.PendingPageN), "free-pages")
}

// churn is n events of streamers first, first+step, … (of 100k).
func churn(first, n, step int) []*kickmonv1.Event {
	const streamers = 100_000
	var out []*kickmonv1.Event
	for i := range n {
		uid := int64((first+i*step)%streamers + 1)
		e := events(uid, 1)[0]
		e.Streamer.Title = strings.Repeat("t", 100)
		out = append(out, e)
	}
	return out
}

// fillChurned gives s 100k streamers' snapshots, then rewrites them all
// over the file in 200 commits, acknowledging as it goes.
func fillChurned(b *testing.B, s *Spool) {
	b.Helper()
	for i := 0; i < 100_000; i += 1000 {
		if err := s.Append(churn(i, 1000, 1)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 200 {
		if err := s.Append(churn(i, 100, 997)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Ack(s.LastSeq()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "spool.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const total, page = 10000, 256
	for range total / 100 {
		if err := s.Append(events(1, 100)); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	from := uint64(1)
	for b.Loop() {
		evs, err := s.Read(from, page)
		if err != nil {
			b.Fatal(err)
		}
		n += len(evs)
		from += page
		if from > total {
			from = 1
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func TestLogID(t *testing.T) {
	dir := t.TempDir()
	t.Run("made with the file and kept", func(t *testing.T) {
		path := filepath.Join(dir, "new.db")
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		id := s.LogID()
		if len(id) != 26 {
			t.Errorf("LogID() = %q, want a ULID", id)
		}
		if got := s.Status().GetLogId(); got != id {
			t.Errorf("Status().LogId = %q, want %q", got, id)
		}
		_ = s.Close()
		s = open(t, path, Options{})
		if s.LogID() != id {
			t.Errorf("after reopen LogID() = %q, want %q", s.LogID(), id)
		}
		other := open(t, filepath.Join(dir, "other.db"), Options{})
		if other.LogID() == id {
			t.Errorf("two spool files share log id %q", id)
		}
	})
	t.Run("given to a spool from before log ids, seqs kept", func(t *testing.T) {
		path := filepath.Join(dir, "old.db")
		s := open(t, path, Options{})
		mustAppend(t, s, events(1, 3))
		_ = s.Close()
		boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyLogID) })
		s = open(t, path, Options{})
		id := s.LogID()
		if id == "" || s.LastSeq() != 3 {
			t.Fatalf("LogID() = %q, LastSeq() = %d; want an id and 3", id, s.LastSeq())
		}
		_ = s.Close()
		s = open(t, path, Options{})
		if s.LogID() != id {
			t.Errorf("log id given on upgrade changed on reopen: %q then %q", id, s.LogID())
		}
	})
}

func TestOldestUnackedAt(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "spool.db"), Options{})
	if s.Status().GetOldestUnackedAt() != nil {
		t.Error("empty spool has oldest_unacked_at")
	}
	evs := events(1, 3)
	for i, e := range evs {
		e.ObservedAt = timestamppb.New(time.Unix(1000+int64(i), 0))
	}
	mustAppend(t, s, evs)
	if _, err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
	if got := s.Status().GetOldestUnackedAt().AsTime(); !got.Equal(time.Unix(1001, 0)) {
		t.Errorf("oldest_unacked_at = %v, want the observed_at of seq 2", got)
	}
	if _, err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	if s.Status().GetOldestUnackedAt() != nil {
		t.Error("everything acknowledged, yet oldest_unacked_at is set")
	}
}

// corruptPages overwrites the page id of every page after the two meta
// pages, as a disk would that lost writes: bbolt's page check panics on
// the first such page a transaction reads.
func corruptPages(t *testing.T, s *Spool) {
	t.Helper()
	pageSize := int64(s.db.Info().PageSize)
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	for off := 2 * pageSize; off < fi.Size(); off += pageSize {
		if _, err := f.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}, off); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCorruptionAfterOpen(t *testing.T) {
	calls := []struct {
		name string
		call func(s *Spool) error
	}{
		{"Read", func(s *Spool) error { _, err := s.Read(1, 10); return err }},
		{"Append", func(s *Spool) error { return s.Append(events(1, 1)) }},
		{"Streamers", func(s *Spool) error { _, err := s.Streamers(); return err }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool.db")
			s := open(t, path, Options{})
			for range 20 { // enough events for pages of their own
				mustAppend(t, s, events(int64(1+len(tt.name)), 50))
			}
			corruptPages(t, s)
			err := tt.call(s)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s on a corrupt file: err = %v, want ErrCorrupt", tt.name, err)
			}
			for _, want := range []string{path, "move it aside"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestCompactionShrinksFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	var logs syncBuffer
	s := open(t, path, Options{KeepAcked: -1, CompactMinBytes: 1 << 20,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	// An outage: a backlog of ~20 MB the writer could not take.
	for range 40 {
		evs := events(1, 500)
		for _, e := range evs {
			e.Streamer.Title = strings.Repeat("x", 1000)
		}
		mustAppend(t, s, evs)
	}
	mustAppend(t, s, events(2, 1)) // a streamer in the snapshot
	grown := s.Stats().FileBytes
	if grown < 20<<20 {
		t.Fatalf("file is %d bytes after the backlog, want at least 20 MiB", grown)
	}
	// The writer catches up: acks prune (a bounded number per call) and
	// the last ones leave the file mostly free.
	for s.FirstSeq() <= s.LastSeq()-1 {
		if _, err := s.Ack(s.LastSeq() - 1); err != nil {
			t.Fatal(err)
		}
	}
	s.bg.Wait() // the compaction started by an ack
	st := s.Stats()
	if st.FileBytes*4 > grown {
		t.Fatalf("file is %d bytes after compaction, was %d: want under a quarter\nlogs:\n%s", st.FileBytes, grown, logs.String())
	}
	t.Logf("file %d bytes after the backlog, %d after compaction; %s", grown, st.FileBytes, logs.String())
	if !strings.Contains(logs.String(), "spool compacted") {
		t.Errorf("no compaction logged:\n%s", logs.String())
	}
	// Everything is still there and the spool goes on, also after reopening.
	want := s.LastSeq()
	if got := seqs(mustRead(t, s, want, 10)); !cmp.Equal(got, []uint64{want}) {
		t.Errorf("after compaction Read = %v, want [%d]", got, want)
	}
	mustAppend(t, s, events(3, 1))
	id := s.LogID()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	if s.LogID() != id || s.LastSeq() != want+1 || s.Stats().AckedSeq != want-1 {
		t.Errorf("after reopen: log id %q last %d acked %d, want %q %d %d", s.LogID(), s.LastSeq(), s.Stats().AckedSeq, id, want+1, want-1)
	}
	sts, err := s.Streamers()
	if err != nil || len(sts) != 3 {
		t.Errorf("streamers after compaction: %d, %v; want 3", len(sts), err)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("compaction left %s.compact behind: %v", path, err)
	}
}
