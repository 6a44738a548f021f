package proc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadEnv(t *testing.T) {
	in := "# comment\nA=1\n\nB='x?y&z'\nC='it'\\''s'\nLAST=end\nAFTER=ignored\n"
	got, err := ReadEnv(context.Background(), strings.NewReader(in), func(k string) bool { return k == "LAST" })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"A=1", "B=x?y&z", "C=it's", "LAST=end"}, got); diff != "" {
		t.Errorf("ReadEnv (-want +got):\n%s", diff)
	}
	if _, err := ReadEnv(context.Background(), strings.NewReader("A=1\n"), func(string) bool { return false }); err == nil {
		t.Error("ReadEnv without the last line succeeded")
	}
}

func TestStartStop(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(Spec{Name: "sleep", Path: "/bin/sleep", Args: []string{"60"}, LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !Alive(p.Pid()) {
		t.Fatal("child not running")
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if Alive(p.Pid()) {
		t.Error("child still running after Stop")
	}
	q, err := Start(Spec{Name: "false", Path: "/bin/false"})
	if err != nil {
		t.Fatal(err)
	}
	<-q.Done()
	if err := q.Stop(time.Second); err == nil {
		t.Error("a failed child's Stop returned no error")
	}
}
