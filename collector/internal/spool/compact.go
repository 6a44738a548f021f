package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kickmon/kickmon/collector/internal/logkeys"
	bolt "go.etcd.io/bbolt"
)

// shouldCompact reports whether the file is at least compactMin bytes and
// less than a third of it holds data: the rest is pages bbolt freed (the
// acknowledged backlog of an outage) or grew ahead. A third, not a half,
// because bbolt grows a file by doubling, so a freshly compacted file may
// be up to twice its data and must not qualify again at once.
func (s *Spool) shouldCompact() bool {
	if s.compactMin < 0 {
		return false
	}
	fi, err := os.Stat(s.path)
	if err != nil || fi.Size() < s.compactMin {
		return false
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	used := int64(-1)
	_ = s.db.View(func(tx *bolt.Tx) error {
		st := s.db.Stats()
		pageSize := int64(s.db.Info().PageSize)
		used = tx.Size() - int64(st.FreePageN+st.PendingPageN)*pageSize
		return nil
	})
	return used >= 0 && used*3 < fi.Size()
}

// compactInBackground starts a compaction when the file qualifies and none
// is running; the spool owns the goroutine and Close waits for it.
func (s *Spool) compactInBackground() {
	if !s.shouldCompact() || !s.compacting.CompareAndSwap(false, true) {
		return
	}
	s.bg.Go(func() {
		defer s.compacting.Store(false)
		if err := s.compact(); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("spool compaction failed; continuing with the file as it is", logkeys.Err, err.Error())
		}
	})
}

// compact copies the live data into a new file next to the spool, makes
// it durable, renames it over the spool and swaps it in. Appends, acks and
// reads wait meanwhile. On any failure before the rename the old file is
// untouched and stays in use; the rename is atomic, so a crash leaves
// either file complete (and at worst a stale .compact file, replaced by
// the next compaction).
func (s *Spool) compact() (err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, _, closed := s.snapshot(); closed {
		return ErrClosed
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	start := time.Now()
	before := fileSize(s.path)
	tmp := s.path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact spool %s: remove stale %s: %w", s.path, tmp, err)
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("compact spool %s: create %s: %w", s.path, tmp, err)
	}
	swapped := false
	defer func() {
		if !swapped {
			_ = dst.Close()
			_ = os.Remove(tmp)
		}
	}()
	defer func() {
		if r := recover(); r != nil { // a corrupt page met while copying
			err = corrupt(s.path, fmt.Errorf("bbolt: %v", r))
		}
	}()
	// Compact commits (and fsyncs) every compactTxBytes.
	if err := bolt.Compact(dst, s.db, compactTxBytes); err != nil {
		return fmt.Errorf("compact spool %s: %w", s.path, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("compact spool %s: rename %s: %w", s.path, tmp, err)
	}
	// From here the new file is the spool: keep it open (it holds its own
	// lock) and let the old one go.
	swapped = true
	old := s.db
	s.db = dst
	if err := old.Close(); err != nil {
		s.log.Warn("closing the spool file replaced by compaction failed", logkeys.Err, err.Error())
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("compact spool %s: %w", s.path, err)
	}
	s.log.Info("spool compacted", logkeys.Bytes, fileSize(s.path), logkeys.BytesWas, before, logkeys.Took, time.Since(start).Round(time.Millisecond))
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
