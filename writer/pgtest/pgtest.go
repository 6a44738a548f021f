// Package pgtest gives tests a real, throwaway PostgreSQL: one private
// cluster per test binary, started from the machine's PostgreSQL binaries on
// a private Unix socket, and a fresh database per test cloned from a migrated
// template. When KICKMON_TEST_DATABASE_URL is set, that server is used
// instead of starting one.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names a PostgreSQL server to use instead of a throwaway cluster.
// Its role needs CREATEDB.
const EnvURL = "KICKMON_TEST_DATABASE_URL"

// installHint is what a test failure says when no binaries are found.
const installHint = "PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin: " +
	"install them (Debian: apt-get install postgresql) or set " + EnvURL

// Cluster is a running PostgreSQL server the tests own.
type Cluster struct {
	dir     string // data directory
	sockDir string
	bin     string // directory of initdb and postgres
	cred    *syscall.Credential
	owner   string // OS user that runs postgres, the superuser's name
	baseURL string // for EnvURL clusters, the given server
	durable bool   // OpenCluster: data kept, fsync on, clean shutdown

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}

	tmplMu    sync.Mutex
	templates map[string]error // template name → migration outcome
	execMu    sync.Mutex
}

var (
	sharedMu  sync.Mutex
	shared    *Cluster
	sharedErr error
	dbCounter atomic.Int64
)

// Main runs the tests and then stops the shared cluster. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Close()
		shared = nil
	}
	return code
}

// Option changes how New prepares a database.
type Option func(*options)

type options struct {
	tmplName string
	migrate  func(ctx context.Context, url string) error
}

// Template clones each database from a template named name, built once per
// cluster by migrate (which receives the template's URL).
func Template(name string, migrate func(ctx context.Context, url string) error) Option {
	return func(o *options) { o.tmplName, o.migrate = name, migrate }
}

// DB is one test's own database.
type DB struct {
	// URL connects to the database (a key=value or URL DSN pgx accepts).
	URL string
	// Name is the database's name.
	Name string
	// Cluster is the server holding it.
	Cluster *Cluster
}

// New returns a fresh database on the shared cluster, dropped by t.Cleanup.
// It fails the test, with what to install, if no PostgreSQL can be had.
func New(t testing.TB, opts ...Option) *DB {
	t.Helper()
	c, err := sharedCluster()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return c.NewDatabase(t, opts...)
}

func sharedCluster() (*Cluster, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		if u := os.Getenv(EnvURL); u != "" {
			shared = &Cluster{baseURL: u, templates: map[string]error{}}
		} else {
			shared, sharedErr = StartCluster()
		}
	}
	return shared, sharedErr
}

// NewCluster starts a cluster of the test's own (for tests that stop and
// restart PostgreSQL); t.Cleanup stops it.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := StartCluster()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// StartCluster initialises and starts a private cluster. The caller must Close it.
func StartCluster() (*Cluster, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, templates: map[string]error{}}
	if err := c.setOwner(); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	c.dir, c.sockDir = filepath.Join(root, "data"), root
	if c.cred != nil {
		if err := os.Chown(root, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			_ = os.RemoveAll(root)
			return nil, fmt.Errorf("chown %s: %w", root, err)
		}
	}
	initdb := c.command(filepath.Join(bin, "initdb"), "-D", c.dir, "-U", c.owner, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := c.Start(); err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	return c, nil
}

// OpenCluster starts a durable cluster whose files live in root (created and
// initialised on first use, reused after): the data survives Close, writes
// are fsynced, and Close shuts the server down cleanly. The same binaries and
// user as StartCluster; as root, root must be reachable by that user.
func OpenCluster(root string) (*Cluster, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, templates: map[string]error{}, durable: true, dir: filepath.Join(root, "data"), sockDir: root}
	if err := c.setOwner(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("postgresql directory: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(root, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, fmt.Errorf("chown %s: %w", root, err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		// A data directory left half-initialised by an interrupted initdb is not trusted.
		_ = os.RemoveAll(c.dir)
		initdb := c.command(filepath.Join(bin, "initdb"), "-D", c.dir, "-U", c.owner, "-A", "trust", "-E", "UTF8", "--locale=C")
		if out, err := initdb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb %s: %w: %s", c.dir, err, strings.TrimSpace(string(out)))
		}
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// setOwner picks the OS user that runs the server: the current one, or an
// unprivileged one when running as root (initdb refuses root).
func (c *Cluster) setOwner() error {
	if os.Geteuid() == 0 {
		var err error
		c.cred, c.owner, err = unprivileged()
		return err
	}
	u, err := user.Current()
	if err != nil {
		return fmt.Errorf("current user: %w", err)
	}
	c.owner = u.Username
	return nil
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = os.TempDir()
	// A durable server gets its own process group: Ctrl-C in the terminal must not shut
	// it down under the writer still draining into it; the owner stops it last.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: c.durable}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// Start starts the server (again, after Stop) and waits until it accepts connections.
func (c *Cluster) Start() error {
	if c.baseURL != "" {
		return errors.New("cannot start a server named by " + EnvURL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return nil
	}
	args := []string{"-D", c.dir, "-k", c.sockDir, "-c", "listen_addresses=", "-c", "max_connections=200", "-c", "log_min_messages=fatal"}
	if !c.durable {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	cmd := c.command(filepath.Join(c.bin, "postgres"), args...)
	logf, err := os.OpenFile(filepath.Join(c.sockDir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("postgres log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	c.cmd, c.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(c.sockDir, "postgres.log"))
			c.cmd = nil
			return fmt.Errorf("postgres exited at start: %s", strings.TrimSpace(string(log)))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 30s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down at once (immediate mode, as a crash would; an
// OpenCluster's cleanly, in fast mode) and waits for it to exit. Data
// survives; Start brings it back.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	sig := syscall.SIGQUIT
	if c.durable {
		sig = syscall.SIGINT // fast shutdown: a checkpoint, nothing to recover next time
	}
	_ = c.cmd.Process.Signal(sig)
	grace := 10 * time.Second
	if c.durable {
		grace = time.Minute // the shutdown checkpoint writes what is dirty
	}
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// Close stops the server and removes its files (an OpenCluster's stay).
func (c *Cluster) Close() {
	if c.baseURL != "" {
		return
	}
	c.Stop()
	if !c.durable {
		_ = os.RemoveAll(c.sockDir)
	}
}

// URL is a DSN for database db on this cluster.
func (c *Cluster) URL(db string) string {
	if c.baseURL != "" {
		u, err := url.Parse(c.baseURL)
		if err != nil {
			return c.baseURL
		}
		u.Path = "/" + db
		return u.String()
	}
	return fmt.Sprintf("host=%s user=%s dbname=%s sslmode=disable", c.sockDir, c.owner, db)
}

// NewDatabase creates a fresh database on this cluster, dropped by t.Cleanup.
func (c *Cluster) NewDatabase(t testing.TB, opts ...Option) *DB {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmpl := "template0"
	if o.migrate != nil {
		var err error
		if tmpl, err = c.template(ctx, o.tmplName, o.migrate); err != nil {
			t.Fatalf("pgtest: template %s: %v", o.tmplName, err)
		}
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), dbCounter.Add(1))
	if err := c.exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return &DB{URL: c.URL(name), Name: name, Cluster: c}
}

// template builds the named template database once per cluster.
func (c *Cluster) template(ctx context.Context, name string, migrate func(context.Context, string) error) (string, error) {
	c.tmplMu.Lock()
	defer c.tmplMu.Unlock()
	db := fmt.Sprintf("tmpl_%d_%s", os.Getpid(), sanitize(name))
	if err, ok := c.templates[name]; ok {
		return db, err
	}
	err := c.exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0", db))
	if err == nil {
		err = migrate(ctx, c.URL(db))
	}
	c.templates[name] = err
	return db, err
}

// exec runs one statement on the maintenance database; CREATE DATABASE from
// one template is serialised because PostgreSQL refuses concurrent copies.
func (c *Cluster) exec(ctx context.Context, sql string) error {
	c.execMu.Lock()
	defer c.execMu.Unlock()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// findBinaries finds the directory holding initdb and postgres.
func findBinaries() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "postgres")) && isExec(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", errors.New(installHint)
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// unprivileged picks the OS user to run PostgreSQL as when tests run as root.
func unprivileged() (*syscall.Credential, string, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, name, nil
	}
	return nil, "", errors.New("running as root and no unprivileged user (postgres or nobody) to run PostgreSQL as")
}
