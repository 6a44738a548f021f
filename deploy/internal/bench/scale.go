package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kickmon/kickmon/deploy/internal/proc"
	"github.com/kickmon/kickmon/deploy/internal/stack"
	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/writer/pgtest"
	"google.golang.org/grpc"
)

// Settings of the measured deployment (as in issue 13).
const (
	pollInterval = 60 * time.Second
	apiBudget    = 100_000
	// freshRate is changes/s per streamer during the fresh deployment:
	// 45/s at 10k streamers, as in the 30-minute soak.
	freshRate = 0.0045
	addChunk  = 2_000 // slugs per AddStreamers call
)

// deployment is kicksim, kickcollector and kickwriter for one world size.
type deployment struct {
	dir, socket, control, dsn  string
	collEnv                    []string
	sim, coll, writer          *proc.Process
	api                        *kickapi.Conn
	writerMetrics, collMetrics string
	http                       *http.Client
	// pprof addresses (empty unless profiles are asked for) and where
	// profiles go.
	collPprof, writerPprof, profileDir string
}

func runScale(ctx context.Context, o Options, ph phases, pg *pgtest.Cluster, n int, logf func(string, ...any)) (rows []row, err error) {
	dir, err := os.MkdirTemp("", "kickbench")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			_ = os.RemoveAll(dir)
		} else {
			err = fmt.Errorf("%w (logs kept in %s)", err, dir)
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	db := fmt.Sprintf("kickmon_%d", n)
	if err := stack.EnsureDatabase(ctx, pg.URL("postgres"), db); err != nil {
		return nil, err
	}
	d := &deployment{dir: dir, socket: filepath.Join(dir, "kickmon.sock"), dsn: pg.URL(db), http: &http.Client{Timeout: 2 * time.Minute}, profileDir: o.ProfileDir}
	defer d.stop()
	logf("%d streamers: starting kicksim, kickcollector, kickwriter", n)
	if err := d.start(ctx, o.BinDir, n); err != nil {
		return nil, err
	}
	world, err := d.streamers(ctx)
	if err != nil {
		return nil, err
	}
	scale := kilo(float64(n))

	// A fresh deployment: the world changes while the operator adds every
	// streamer; which sessions of the first minutes reach the database?
	rate := max(1, freshRate*float64(n))
	logf("%s: fresh deployment, %.0f changes/s for %s, adding %d streamers", scale, rate, ph.fresh, n)
	if err := d.setRate(ctx, rate); err != nil {
		return nil, err
	}
	pmFrom, err := d.scrape(ctx, d.collMetrics)
	if err != nil {
		return nil, err
	}
	from := time.Now()
	watched, addTook, err := d.add(ctx, world)
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, time.Until(from.Add(ph.fresh))); err != nil {
		return nil, err
	}
	to := time.Now()
	if err := d.setRate(ctx, 0); err != nil {
		return nil, err
	}
	pmTo, err := d.scrape(ctx, d.collMetrics)
	if err != nil {
		return nil, err
	}
	if err := d.caughtUp(ctx, 3*time.Minute); err != nil {
		return nil, err
	}
	truth, err := d.truth(ctx, 0)
	if err != nil {
		return nil, err
	}
	var last int64 // the latest change fetched
	if len(truth) > 0 {
		last = truth[len(truth)-1].Seq
	}
	stored, err := d.sessions(ctx)
	if err != nil {
		return nil, err
	}
	sr := sessions(truth, stored, watched, from, to)
	rows = append(rows,
		row{fmt.Sprintf("sessions missed in the first %s of a fresh deployment, %s streamers at %.0f changes/s", ph.fresh, scale, rate), "0",
			fmt.Sprintf("%d of %d (%.1f %%); %d still live, unseen yet; adding took %s (load %s)", sr.Missed, sr.Started, pct(sr.Missed, sr.Started), sr.Pending, addTook.Round(100*time.Millisecond), loadAvg())},
		row{fmt.Sprintf("detection of streamers without a channel id, %s streamers, p50 / p99", scale), "p99 ≤ poll interval (60 s)",
			fmt.Sprintf("%s / %s of %d first sessions; %d missed; in the window %s", ms(percentile(sr.NoChannel, 50)), ms(percentile(sr.NoChannel, 99)), len(sr.NoChannel), sr.NoChannelMissed,
				uncoveredPeriod(n, to.Sub(from), pmFrom, pmTo))},
	)

	// A quiet world: what watching costs.
	logf("%s: quiet world for %s", scale, ph.quiet)
	if err := sleep(ctx, 5*time.Second); err != nil {
		return nil, err
	}
	cpu0, err := cpuTime(d.coll.Pid())
	if err != nil {
		return nil, err
	}
	req0, err := d.requests(ctx)
	if err != nil {
		return nil, err
	}
	pm0, err := d.scrape(ctx, d.collMetrics)
	if err != nil {
		return nil, err
	}
	mem := sample(d.coll.Pid())
	t0 := time.Now()
	prof := d.profile(ctx, fmt.Sprintf("%d-quiet", n), ph.quiet-2*time.Second)
	if err := sleep(ctx, ph.quiet); err != nil {
		mem.end()
		return nil, err
	}
	lo, hi := mem.end()
	if err := prof(); err != nil {
		return nil, err
	}
	cpu1, _ := cpuTime(d.coll.Pid())
	req1, err := d.requests(ctx)
	if err != nil {
		return nil, err
	}
	pm1, err := d.scrape(ctx, d.collMetrics)
	if err != nil {
		return nil, err
	}
	quietFor := time.Since(t0)
	_, peak, _ := memory(d.coll.Pid())
	rows = append(rows,
		row{fmt.Sprintf("collector CPU, quiet world, %s streamers", scale), "≤ 2 % of a core",
			fmt.Sprintf("%.1f %% (load %s)", 100*(cpu1-cpu0).Seconds()/quietFor.Seconds(), loadAvg())},
		row{fmt.Sprintf("collector RSS, %s streamers", scale), fmt.Sprintf("≤ %s (3 KB/streamer)", mb(int64(n)*3000)),
			fmt.Sprintf("quiet %s–%s, peak so far %s (%.1f KB/streamer)", mb(lo), mb(hi), mb(peak), float64(hi)/float64(n)/1000)},
		row{fmt.Sprintf("REST requests per poll round, %s streamers", scale), fmt.Sprintf("base round ⌈N/50⌉ = %d", (n+49)/50),
			pollRound(n, req1-req0, quietFor, pm0, pm1)},
	)
	confirm, err := d.confirmDurations(ctx)
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{fmt.Sprintf("writer confirmation refresh, %s streamers", scale), "< 1 s, never a timeout", confirm})

	// Changes under load: push change to committed row.
	for _, r := range o.Rates {
		logf("%s: %d changes/s for %s", scale, r, ph.load)
		st, err := d.status(ctx)
		if err != nil {
			return nil, err
		}
		seq0 := st.GetSpool().GetLastSeq()
		cpu0, _ := cpuTime(d.coll.Pid())
		if err := d.setRate(ctx, float64(r)); err != nil {
			return nil, err
		}
		t0 := time.Now()
		prof := d.profile(ctx, fmt.Sprintf("%d-rate%d", n, r), ph.load)
		maxLag, err := d.watchLag(ctx, ph.load)
		if err != nil {
			return nil, err
		}
		if err := prof(); err != nil {
			return nil, err
		}
		if err := d.setRate(ctx, 0); err != nil {
			return nil, err
		}
		took := time.Since(t0)
		cpu1, _ := cpuTime(d.coll.Pid())
		if err := d.caughtUp(ctx, 5*time.Minute); err != nil {
			return nil, err
		}
		drained := time.Since(t0)
		truth, err := d.truth(ctx, last)
		if err != nil {
			return nil, err
		}
		events, err := d.pushEvents(ctx, seq0)
		if err != nil {
			return nil, err
		}
		if len(truth) > 0 {
			last = truth[len(truth)-1].Seq
		}
		lat, unmatched := changeToCommit(truth, events)
		rows = append(rows, row{fmt.Sprintf("push change → row committed, %s streamers, %s changes/s", scale, kilo(float64(r))), "p99 ≤ 150 ms at 10k changes/s",
			fmt.Sprintf("p50 %s, p99 %s over %d pushed changes (%d unmatched); %.0f changes/s made; writer at most %d seq behind, caught up %s after the start; collector CPU %.0f %% (load %s)",
				ms(percentile(lat, 50)), ms(percentile(lat, 99)), len(lat), unmatched, float64(len(truth))/took.Seconds(), maxLag, drained.Round(100*time.Millisecond),
				100*(cpu1-cpu0).Seconds()/took.Seconds(), loadAvg())})
	}
	_, peak, _ = memory(d.coll.Pid())
	rows = append(rows, row{fmt.Sprintf("collector peak RSS, %s streamers, after the load", scale), fmt.Sprintf("≤ %s", mb(int64(n)*3000)), mb(peak)})

	// Cold start with the whole watch list in the spool.
	logf("%s: cold start", scale)
	cold, err := d.restartCollector(ctx, o.BinDir, n)
	if err != nil {
		return nil, err
	}
	rows = append(rows, row{fmt.Sprintf("cold start to serving, %s streamers in the spool", scale), "≤ 1 s", fmt.Sprintf("%s (load %s)", ms(cold), loadAvg())})
	return rows, nil
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (d *deployment) start(ctx context.Context, bin string, n int) error {
	simOut, simW := io.Pipe()
	var err error
	d.sim, err = proc.Start(proc.Spec{Name: "kicksim", Path: filepath.Join(bin, "kicksim"), LogDir: d.dir, Stdout: simW,
		Args: []string{"--streamers", strconv.Itoa(n), "--listen", "127.0.0.1:0", "--log-level", "warn"}})
	if err != nil {
		return err
	}
	env, err := readEnv(ctx, simOut)
	go func() { _, _ = io.Copy(io.Discard, simOut) }()
	if err != nil {
		return fmt.Errorf("kicksim did not print its environment: %w", err)
	}
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "KICKSIM_CONTROL_URL" {
			d.control = strings.Trim(v, "'")
		}
	}
	if d.control == "" {
		return errors.New("kicksim printed no KICKSIM_CONTROL_URL")
	}
	common := []string{"KICKMON_SOCKET=" + d.socket, "KICKMON_LOG_LEVEL=info"}
	var collExtra, writerExtra []string
	if d.profileDir != "" {
		for _, a := range []*string{&d.collPprof, &d.writerPprof} {
			port, err := freePort()
			if err != nil {
				return err
			}
			*a = "127.0.0.1:" + strconv.Itoa(port)
		}
		collExtra, writerExtra = []string{"KICKMON_PPROF_ADDR=" + d.collPprof}, []string{"KICKMON_PPROF_ADDR=" + d.writerPprof}
	}
	mport, err := freePort()
	if err != nil {
		return err
	}
	d.collMetrics = "http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics"
	collExtra = append(collExtra, "KICKMON_METRICS_ADDR=127.0.0.1:"+strconv.Itoa(mport))
	d.collEnv = append(append(append(env, common...), collExtra...), "KICKMON_STATE_DIR="+filepath.Join(d.dir, "state"),
		"KICKMON_POLL_INTERVAL="+pollInterval.String(), "KICKMON_API_BUDGET="+strconv.Itoa(apiBudget))
	if err := d.startCollector(ctx, bin, 0); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	d.writerMetrics = "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	d.writer, err = proc.Start(proc.Spec{Name: "kickwriter", Path: filepath.Join(bin, "kickwriter"), LogDir: d.dir,
		Env: append(append(common, writerExtra...), "KICKMON_DATABASE_URL="+d.dsn, "KICKMON_METRICS_ADDR=127.0.0.1:"+strconv.Itoa(port))})
	if err != nil {
		return err
	}
	d.api, err = kickapi.Dial(d.socket)
	return err
}

// startCollector starts the collector and waits until it serves with at
// least want streamers restored.
func (d *deployment) startCollector(ctx context.Context, bin string, want int64) error {
	var err error
	d.coll, err = proc.Start(proc.Spec{Name: "kickcollector", Path: filepath.Join(bin, "kickcollector"), LogDir: d.dir, Env: d.collEnv})
	if err != nil {
		return err
	}
	// The socket answers before the main loop has restored the watch
	// list: serving is when the status counts the streamers.
	c, err := kickapi.Dial(d.socket)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := c.GetStatus(sctx, &kickmonv1.GetStatusRequest{}, grpc.WaitForReady(true))
		cancel()
		switch {
		case err == nil && res.GetStatus().GetStreamers() >= want:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("kickcollector not serving after 2 minutes: %w", err)
		}
		select {
		case <-d.coll.Done():
			return fmt.Errorf("kickcollector exited: %v", d.coll.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// restartCollector stops the collector cleanly and measures how long the
// new one takes to answer on its socket.
func (d *deployment) restartCollector(ctx context.Context, bin string, n int) (time.Duration, error) {
	if err := d.coll.Stop(time.Minute); err != nil {
		return 0, fmt.Errorf("stop kickcollector: %w", err)
	}
	// Append to the first collector's log rather than replace it.
	_ = os.Rename(filepath.Join(d.dir, "kickcollector.log"), filepath.Join(d.dir, "kickcollector.1.log"))
	start := time.Now()
	var prof func() error
	if d.profileDir != "" {
		// The restore runs in the first seconds: profile them (fetch
		// waits for the listener).
		prof = d.profile(ctx, fmt.Sprintf("%d-coldstart", n), 10*time.Second)
	}
	if err := d.startCollector(ctx, bin, int64(n)); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if prof != nil {
		if err := prof(); err != nil {
			return 0, err
		}
	}
	return took, nil
}

func (d *deployment) stop() {
	if d.api != nil {
		_ = d.api.Close()
	}
	for _, p := range []*proc.Process{d.writer, d.coll, d.sim} {
		if p != nil {
			_ = p.Stop(30 * time.Second)
		}
	}
}

// profile takes CPU profiles of both daemons for a while, then a heap
// profile of each, into the profile directory (nothing unless one is set).
// The returned function waits for them.
func (d *deployment) profile(ctx context.Context, name string, for_ time.Duration) func() error {
	if d.profileDir == "" {
		return func() error { return nil }
	}
	errc := make(chan error, 2)
	for _, daemon := range []struct{ name, addr string }{{"collector", d.collPprof}, {"writer", d.writerPprof}} {
		go func() {
			base := "http://" + daemon.addr + "/debug/pprof/"
			err := d.fetch(ctx, base+"profile?seconds="+strconv.Itoa(max(1, int(for_.Seconds()))), filepath.Join(d.profileDir, daemon.name+"-"+name+".cpu.pprof"))
			if err == nil {
				err = d.fetch(ctx, base+"heap", filepath.Join(d.profileDir, daemon.name+"-"+name+".heap.pprof"))
			}
			errc <- err
		}()
	}
	return func() error { return errors.Join(<-errc, <-errc) }
}

func (d *deployment) fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := d.http.Do(req)
	for start := time.Now(); err != nil && time.Since(start) < 10*time.Second; {
		time.Sleep(2 * time.Millisecond) // not listening yet (a cold start)
		resp, err = d.http.Do(req)
	}
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	return os.WriteFile(file, b, 0o644)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (d *deployment) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.control+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("kicksim %s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("kicksim %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (d *deployment) setRate(ctx context.Context, r float64) error {
	return d.do(ctx, http.MethodPost, "/rate", map[string]float64{"rate": r}, nil)
}

type simStreamer struct {
	UserID int64  `json:"user_id"`
	Slug   string `json:"slug"`
}

func (d *deployment) streamers(ctx context.Context) ([]simStreamer, error) {
	var out []simStreamer
	return out, d.do(ctx, http.MethodGet, "/streamers", nil, &out)
}

func (d *deployment) truth(ctx context.Context, since int64) ([]transition, error) {
	var out []transition
	return out, d.do(ctx, http.MethodGet, "/truth?since="+strconv.FormatInt(since, 10), nil, &out)
}

// requests is how many channels requests kicksim has answered.
func (d *deployment) requests(ctx context.Context) (int64, error) {
	var out map[string]int64
	if err := d.do(ctx, http.MethodGet, "/requests", nil, &out); err != nil {
		return 0, err
	}
	return out["channels"] + out["livestreams"], nil
}

// add watches every streamer of the world, in chunks, and returns when
// each was added. The world renames streamers while this runs: a slug
// that no longer resolves is retried under the streamer's current one.
func (d *deployment) add(ctx context.Context, world []simStreamer) (map[int64]time.Time, time.Duration, error) {
	start := time.Now()
	watched := make(map[int64]time.Time, len(world))
	for i := 0; i < len(world); i += addChunk {
		chunk := world[i:min(i+addChunk, len(world))]
		for attempt := 0; len(chunk) > 0; attempt++ {
			failed, err := d.addChunk(ctx, chunk, watched)
			if err != nil {
				return nil, 0, err
			}
			if len(failed) > 0 && attempt == 2 {
				return nil, 0, fmt.Errorf("add %s: %s", failed[0].Slug, failed[0].err)
			}
			chunk = chunk[:0:0]
			for _, f := range failed {
				var cur simStreamer
				if err := d.do(ctx, http.MethodGet, "/streamers/"+strconv.FormatInt(f.UserID, 10), nil, &cur); err != nil {
					return nil, 0, err
				}
				chunk = append(chunk, cur)
			}
		}
	}
	return watched, time.Since(start), nil
}

type failedAdd struct {
	simStreamer
	err string
}

func (d *deployment) addChunk(ctx context.Context, chunk []simStreamer, watched map[int64]time.Time) ([]failedAdd, error) {
	slugs := make([]string, len(chunk))
	for j, s := range chunk {
		slugs[j] = s.Slug
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	res, err := d.api.AddStreamers(actx, &kickmonv1.AddStreamersRequest{Slugs: slugs})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("add streamers: %w", err)
	}
	if len(res.GetResults()) != len(chunk) {
		return nil, fmt.Errorf("add streamers: %d results for %d slugs", len(res.GetResults()), len(chunk))
	}
	now := time.Now()
	var failed []failedAdd
	for j, r := range res.GetResults() {
		if r.GetError() != "" {
			failed = append(failed, failedAdd{chunk[j], r.GetError()})
			continue
		}
		watched[chunk[j].UserID] = now
	}
	return failed, nil
}

func (d *deployment) status(ctx context.Context) (*kickmonv1.CollectorStatus, error) {
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := d.api.GetStatus(sctx, &kickmonv1.GetStatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("collector status: %w", err)
	}
	return res.GetStatus(), nil
}

// watchLag samples how far the writer's acknowledgements trail the spool
// for a while and returns the largest gap seen.
func (d *deployment) watchLag(ctx context.Context, for_ time.Duration) (uint64, error) {
	var worst uint64
	end := time.Now().Add(for_)
	for time.Now().Before(end) {
		st, err := d.status(ctx)
		if err != nil {
			return 0, err
		}
		sp := st.GetSpool()
		if sp.GetLastSeq() > sp.GetAckedSeq() {
			worst = max(worst, sp.GetLastSeq()-sp.GetAckedSeq())
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return worst, nil
}

// caughtUp waits until the writer has committed everything in the spool.
func (d *deployment) caughtUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := d.status(ctx)
		if err != nil {
			return err
		}
		sp := st.GetSpool()
		if sp.GetAckedSeq() >= sp.GetLastSeq() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the writer did not catch up within %s: acked %d of %d", timeout, sp.GetAckedSeq(), sp.GetLastSeq())
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func (d *deployment) query(ctx context.Context, sql string, args []any, scan func(pgx.Rows) error) error {
	conn, err := pgx.Connect(ctx, d.dsn)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// pushEvents are the starts and updates realtime saw first, after seq.
func (d *deployment) pushEvents(ctx context.Context, after uint64) ([]storedEvent, error) {
	var out []storedEvent
	err := d.query(ctx, `SELECT broadcaster_user_id, kind, observed_at, pg_xact_commit_timestamp(xmin)
FROM kickmon.status_events
WHERE seq > $1 AND kind IN ('STREAM_STARTED', 'STREAM_UPDATED') AND source IN ('pusher', 'centrifugo')`,
		[]any{int64(after)}, func(r pgx.Rows) error {
			var e storedEvent
			if err := r.Scan(&e.UserID, &e.Kind, &e.ObservedAt, &e.Committed); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	return out, err
}

// sessions are the stored sessions with when kickmon saw each start.
func (d *deployment) sessions(ctx context.Context) ([]storedSession, error) {
	var out []storedSession
	err := d.query(ctx, `SELECT s.broadcaster_user_id, s.started_at, coalesce(e.seen, s.updated_at)
FROM kickmon.stream_sessions s
LEFT JOIN (SELECT session_id, min(observed_at) AS seen FROM kickmon.status_events
           WHERE kind = 'STREAM_STARTED' GROUP BY session_id) e USING (session_id)`,
		nil, func(r pgx.Rows) error {
			var s storedSession
			if err := r.Scan(&s.UserID, &s.StartedAt, &s.Seen); err != nil {
				return err
			}
			out = append(out, s)
			return nil
		})
	return out, err
}

// scrape reads a daemon's /metrics: each sample by its name with labels.
func (d *deployment) scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	values := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err == nil {
			values[f[0]] = v
		}
	}
	return values, nil
}

// confirmDurations reads the writer's confirmation refresh histogram.
func (d *deployment) confirmDurations(ctx context.Context) (string, error) {
	values, err := d.scrape(ctx, d.writerMetrics)
	if err != nil {
		return "", err
	}
	n := values["kickmon_writer_confirm_duration_seconds_count"]
	if n == 0 {
		return "no refresh yet", nil
	}
	failed := values[`kickmon_writer_confirm_refreshes_total{outcome="database"}`] + values[`kickmon_writer_confirm_refreshes_total{outcome="collector"}`]
	// The slowest bucket that holds the last refresh bounds the slowest one.
	slowest := "> 30 s"
	for _, le := range []string{"0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30"} {
		if values[`kickmon_writer_confirm_duration_seconds_bucket{le="`+le+`"}`] >= n {
			slowest = "≤ " + le + " s"
			break
		}
	}
	return fmt.Sprintf("mean %s over %.0f refreshes, slowest %s, %.0f failed (load %s)",
		ms(time.Duration(values["kickmon_writer_confirm_duration_seconds_sum"]/n*float64(time.Second))), n, slowest, failed, loadAvg()), nil
}
