package testwait

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var calls int
	For(t, time.Minute, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

func TestForFailsAfterTheTimeout(t *testing.T) {
	var r recorder
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine it runs on, as in a test
		defer close(done)
		For(&r, 20*time.Millisecond, "never", func() bool { return false })
	}()
	<-done
	if got, want := r.fatal.Load(), "timed out after 20ms waiting for never"; got != want {
		t.Errorf("Fatalf(%v), want %q", got, want)
	}
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine like the real one.
type recorder struct {
	testing.TB
	fatal atomic.Value
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal.Store(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
