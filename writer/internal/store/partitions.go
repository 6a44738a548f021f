package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/writer/internal/logkeys"
)

// status_events is partitioned by month of observed_at (UTC, migration
// 003): kickmon.status_events_YYYY_MM, created by the SQL function
// kickmon.status_events_partition. A flush creates, in its transaction,
// the partition of any month it has not seen yet (an event replayed from
// a long outage, or a new month), so a row never lacks its partition; the
// writer also creates the next month's ahead (EnsurePartitions) and drops
// whole partitions past the retention (DropPartitionsBefore).

// partitionCache remembers the months whose partition is known to exist.
type partitionCache struct {
	mu     sync.Mutex
	months map[time.Time]bool
}

func (c *partitionCache) has(m time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.months[m]
}

func (c *partitionCache) set(m time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.months == nil {
		c.months = map[time.Time]bool{}
	}
	if ok {
		c.months[m] = true
	} else {
		delete(c.months, m)
	}
}

// forget clears the cache, after a transaction that may have created
// partitions rolled back, or a row found no partition.
func (c *partitionCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.months)
}

// monthOf is the first instant of t's month in UTC.
func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// ensureEventPartitions creates in tx the partitions evs need that are
// not known to exist.
func (s *Store) ensureEventPartitions(ctx context.Context, tx pgx.Tx, evs []*kickmonv1.Event) error {
	var last time.Time
	for _, e := range evs {
		m := monthOf(e.GetObservedAt().AsTime())
		if m.Equal(last) || s.parts.has(m) {
			last = m
			continue
		}
		last = m
		s.hook(ctx, "partition")
		if _, err := tx.Exec(ctx, `SELECT kickmon.status_events_partition($1)`, m); err != nil {
			return fmt.Errorf("create the status_events partition of %s: %w", m.Format("2006-01"), err)
		}
		s.parts.set(m, true) // forgotten again if the transaction fails
	}
	return nil
}

// isNoPartition reports whether err is a row that found no partition: the
// partition was dropped since it was cached. Not a data error: the flush
// is retried and creates it.
func isNoPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition")
}

// EnsurePartitions creates the partitions of now's month and the next
// ahead months, so that no flush waits for DDL at a month's turn.
func (s *Store) EnsurePartitions(ctx context.Context, now time.Time, ahead int) error {
	m := monthOf(now)
	for i := 0; i <= ahead; i++ {
		month := m.AddDate(0, i, 0)
		if _, err := s.pool.Exec(ctx, `SELECT kickmon.status_events_partition($1)`, month); err != nil {
			return fmt.Errorf("create the status_events partition of %s: %w", month.Format("2006-01"), err)
		}
		s.parts.set(month, true)
	}
	return nil
}

// partitionName matches the partitions kickmon manages; others (made by
// an operator) are left alone.
var partitionName = regexp.MustCompile(`^status_events_(\d{4})_(\d{2})$`)

// Partition is a month partition of status_events.
type Partition struct {
	Name  string
	Month time.Time // its first instant (UTC); it holds [Month, Month+1 month)
}

// Partitions lists the month partitions of status_events, oldest first.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	rows, err := s.pool.Query(ctx, `
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'kickmon.status_events'::regclass
ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list status_events partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list status_events partitions: %w", err)
	}
	var out []Partition
	for _, n := range names {
		m := partitionName.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		if mo < 1 || mo > 12 {
			continue
		}
		out = append(out, Partition{Name: n, Month: time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)})
	}
	return out, nil
}

// DropPartitionsBefore drops every month partition whose whole month is
// before cutoff (the events observed before it), one transaction each, and
// returns the names dropped. The current month's partition is never
// dropped, whatever cutoff says.
func (s *Store) DropPartitionsBefore(ctx context.Context, cutoff, now time.Time) ([]string, error) {
	parts, err := s.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	current := monthOf(now)
	for _, p := range parts {
		end := p.Month.AddDate(0, 1, 0)
		if end.After(cutoff) || !p.Month.Before(current) {
			continue
		}
		s.parts.set(p.Month, false)
		if _, err := s.pool.Exec(ctx, `DROP TABLE kickmon.`+pgx.Identifier{p.Name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("drop status_events partition %s: %w", p.Name, err)
		}
		s.log.Info("dropped a status_events partition past the retention", logkeys.Partition, p.Name, logkeys.Before, cutoff.Format(time.RFC3339))
		dropped = append(dropped, p.Name)
	}
	return dropped, nil
}
