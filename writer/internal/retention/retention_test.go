package retention_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kickmon/kickmon/writer/internal/batch"
	"github.com/kickmon/kickmon/writer/internal/retention"
	"github.com/kickmon/kickmon/writer/internal/store"
	"github.com/kickmon/kickmon/writer/internal/writertest"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMain(m *testing.M) { os.Exit(writertest.Main(m)) }

func partitions(t *testing.T, st *store.Store) []string {
	t.Helper()
	ps, err := st.Partitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func count(t *testing.T, st *store.Store) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM kickmon.status_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Events observed over nine months; a round on 2026-09-15 with 90 days of
// retention drops the months that ended before 2026-06-17 and keeps the
// rest, the current month and the next one ahead.
func TestRetentionDropsOldPartitionsKeepsCurrent(t *testing.T) {
	now := time.Date(2026, 9, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		retention time.Duration
		wantParts []string
		wantRows  int
	}{
		{"keep all", 0, []string{"status_events_2026_01", "status_events_2026_02", "status_events_2026_03",
			"status_events_2026_04", "status_events_2026_05", "status_events_2026_06", "status_events_2026_07",
			"status_events_2026_08", "status_events_2026_09", "status_events_2026_10"}, 9},
		{"90 days", 90 * 24 * time.Hour, []string{"status_events_2026_06", "status_events_2026_07",
			"status_events_2026_08", "status_events_2026_09", "status_events_2026_10"}, 4},
		{"1 day never drops the current month", 24 * time.Hour, []string{"status_events_2026_09", "status_events_2026_10"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := writertest.NewDB(t)
			st, err := store.Open(context.Background(), db.URL, writertest.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// Drop what the migration made ahead of the real clock.
			for _, p := range partitions(t, st) {
				if _, err := st.Pool().Exec(context.Background(), `DROP TABLE kickmon.`+p); err != nil {
					t.Fatal(err)
				}
			}
			evs := writertest.Updates(1, 9, 2)
			for i, e := range evs { // one event on the 10th of each month, January to September
				e.ObservedAt = timestamppb.New(time.Date(2026, time.Month(1+i), 10, 0, 0, 0, 0, time.UTC))
			}
			if _, err := st.Write(context.Background(), batch.Pending{Events: evs}); err != nil {
				t.Fatal(err)
			}
			if _, err := retention.Once(context.Background(), st, retention.Options{Retention: tt.retention}, now); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.wantParts, partitions(t, st)); d != "" {
				t.Errorf("partitions (-want +got):\n%s", d)
			}
			if got := count(t, st); got != tt.wantRows {
				t.Errorf("%d events left, want %d", got, tt.wantRows)
			}
			// Writing goes on, also into a month whose partition was
			// dropped (an event replayed late): it is made again.
			late := writertest.Updates(10, 2, 1)
			late[0].ObservedAt = timestamppb.New(time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC))
			late[1].ObservedAt = timestamppb.New(now)
			if res, err := st.Write(context.Background(), batch.Pending{Events: late}); err != nil || res.Applied != 2 || res.Quarantined != 0 {
				t.Fatalf("Write after retention = %+v, %v; want 2 applied", res, err)
			}
		})
	}
}
