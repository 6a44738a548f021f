package pgtest_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/writer/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var migrations atomic.Int32

func migrate(ctx context.Context, url string) error {
	migrations.Add(1)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, `CREATE TABLE marker (id int PRIMARY KEY)`)
	return err
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Each test gets its own database, cloned from a template migrated once.
func TestEachTestHasItsOwnDatabase(t *testing.T) {
	ctx := context.Background()
	opt := pgtest.Template("marker", migrate)
	a, b := pgtest.New(t, opt), pgtest.New(t, opt)
	if a.Name == b.Name {
		t.Fatalf("two tests share database %s", a.Name)
	}
	ca, cb := connect(t, a.URL), connect(t, b.URL)
	if _, err := ca.Exec(ctx, `INSERT INTO marker VALUES (1)`); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM marker`).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	if n != 0 {
		t.Errorf("database %s sees %d rows written to %s", b.Name, n, a.Name)
	}
	if got := migrations.Load(); got != 1 {
		t.Errorf("template migrated %d times, want 1", got)
	}
	var db, user string
	if err := ca.QueryRow(ctx, `SELECT current_database(), current_user`).Scan(&db, &user); err != nil {
		t.Fatalf("query: %v", err)
	}
	if db != a.Name {
		t.Errorf("connected to %q, want %q", db, a.Name)
	}
	if user == "root" {
		t.Errorf("server runs as root")
	}
}

// A database is dropped when its test ends.
func TestDatabaseDroppedAfterTest(t *testing.T) {
	var name string
	var cluster *pgtest.Cluster
	t.Run("inner", func(t *testing.T) {
		db := pgtest.New(t)
		name, cluster = db.Name, db.Cluster
	})
	conn := connect(t, cluster.URL("postgres"))
	var exists bool
	if err := conn.QueryRow(context.Background(), `SELECT exists(SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatalf("query: %v", err)
	}
	if exists {
		t.Errorf("database %s still exists after its test", name)
	}
}

// A private cluster survives a stop and start with its data.
func TestClusterRestartKeepsData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second cluster")
	}
	ctx := context.Background()
	c := pgtest.NewCluster(t)
	db := c.NewDatabase(t)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE k (v int); INSERT INTO k VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	c.Stop()
	if _, err := pgx.Connect(ctx, db.URL); err == nil {
		t.Fatal("connected to a stopped cluster")
	}
	if err := c.Start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	conn = connect(t, db.URL)
	var v int
	if err := conn.QueryRow(ctx, `SELECT v FROM k`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: v=%d err=%v", v, err)
	}
}

// A durable cluster keeps its files after Close, and a second OpenCluster of
// the same directory finds the data.
func TestOpenClusterKeepsDataAcrossOpens(t *testing.T) {
	if testing.Short() {
		t.Skip("initialises a cluster")
	}
	ctx := context.Background()
	root := t.TempDir()
	if os.Geteuid() == 0 {
		// The server runs as an unprivileged user, who must reach root.
		for _, d := range []string{filepath.Dir(root), root} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, sql := range []string{`CREATE TABLE k (v int); INSERT INTO k VALUES (42)`, `INSERT INTO k VALUES (43)`} {
		c, err := pgtest.OpenCluster(root + "/pg")
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		conn := connect(t, c.URL("postgres"))
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		_ = conn.Close(ctx)
		c.Close()
	}
	c, err := pgtest.OpenCluster(root + "/pg")
	if err != nil {
		t.Fatalf("third open: %v", err)
	}
	defer c.Close()
	var n int
	if err := connect(t, c.URL("postgres")).QueryRow(ctx, `SELECT count(*) FROM k`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("after two opens: %d rows, err=%v; want 2", n, err)
	}
}
