package kicksim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestWorldDeterministic(t *testing.T) {
	a, err := New(WithStreamers(500), WithSeed(7), WithLiveFraction(0.3))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(WithStreamers(500), WithSeed(7), WithLiveFraction(0.3))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ignore := cmpopts.IgnoreFields(Streamer{}, "StartedAt", "PusherCreatedAt")
	if diff := cmp.Diff(a.Streamers(), b.Streamers(), ignore, cmpopts.IgnoreUnexported(time.Location{})); diff != "" {
		t.Errorf("same seed, different worlds:\n%s", diff)
	}
	if a.ClientID() != b.ClientID() || a.ClientSecret() != b.ClientSecret() {
		t.Error("same seed, different credentials")
	}
	c, err := New(WithStreamers(500), WithSeed(8))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Streamers()[0].Slug == a.Streamers()[0].Slug && c.Streamers()[1].Slug == a.Streamers()[1].Slug {
		t.Error("different seeds, same slugs")
	}
}

func TestWorldIDs(t *testing.T) {
	sim, err := New(WithStreamers(20000))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	seen := map[int64]string{}
	slugs := map[string]bool{}
	for _, st := range sim.Streamers() {
		if st.UserID == st.ChannelID || st.UserID == st.ChatroomID || st.ChannelID == st.ChatroomID {
			t.Fatalf("ids not distinct: %+v", st)
		}
		for kind, id := range map[string]int64{"user": st.UserID, "channel": st.ChannelID, "chatroom": st.ChatroomID} {
			if prev, dup := seen[id]; dup {
				t.Fatalf("id %d is both %s and %s", id, prev, kind)
			}
			seen[id] = kind
		}
		if !validSlug(st.Slug) || slugs[st.Slug] {
			t.Fatalf("bad or duplicate slug %q", st.Slug)
		}
		slugs[st.Slug] = true
	}
}

func TestTruth(t *testing.T) {
	sim := startSim(t, WithStreamers(3))
	st := sim.Streamers()[0]
	steps := []func() error{
		func() error { return sim.GoLive(st.UserID) },
		func() error { return sim.SetTitle(st.UserID, "t2") },
		func() error { return sim.SetCategory(st.UserID, 15) },
		func() error { return sim.SetViewers(st.UserID, 77) },
		func() error { return sim.Rename(st.UserID, "new-name") },
		func() error { return sim.GoOffline(st.UserID) },
		func() error { return sim.GoLive(st.UserID) },
		func() error { return sim.Ban(st.UserID) },
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	truth := sim.Truth()
	var kinds []string
	for i, tr := range truth {
		kinds = append(kinds, tr.Kind)
		if tr.Seq != int64(i+1) || tr.UserID != st.UserID || tr.At.IsZero() {
			t.Errorf("transition %d: %+v", i, tr)
		}
	}
	want := []string{KindLive, KindTitle, KindCategory, KindViewers, KindRename, KindOffline, KindLive, KindOffline, KindBan}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Fatalf("kinds -want +got:\n%s", diff)
	}
	if truth[4].OldSlug != st.Slug || truth[4].Slug != "new-name" {
		t.Errorf("rename %+v", truth[4])
	}
	off := truth[5]
	if !off.StartedAt.Equal(truth[0].StartedAt) || off.EndedAt.IsZero() || off.StartedAt.Nanosecond() != 0 {
		t.Errorf("offline %+v", off)
	}
	if !truth[7].Banned || truth[6].LivestreamID == truth[0].LivestreamID {
		t.Errorf("second session %+v / %+v", truth[6], truth[7])
	}
	for _, f := range []func() error{
		func() error { return sim.GoLive(1) },
		func() error { return sim.GoOffline(sim.Streamers()[1].UserID) },
		func() error { return sim.SetCategory(st.UserID, 999999) },
		func() error { return sim.SetViewers(sim.Streamers()[1].UserID, 3) },
	} {
		if err := f(); err == nil {
			t.Error("expected an error")
		}
	}
	if err := sim.GoLive(sim.Streamers()[1].UserID); err != nil {
		t.Fatal(err)
	}
	if err := sim.GoLive(sim.Streamers()[1].UserID); err == nil {
		t.Error("GoLive twice succeeded")
	}
}

func TestTruthLimit(t *testing.T) {
	sim := startSim(t, WithStreamers(1), WithTruthLimit(10))
	id := sim.Streamers()[0].UserID
	for i := 0; i < 25; i++ {
		if err := sim.SetTitle(id, strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	truth := sim.Truth()
	if len(truth) > 10 || truth[len(truth)-1].Seq != 25 || truth[len(truth)-1].Title != "24" {
		t.Errorf("%d transitions, last %+v", len(truth), truth[len(truth)-1])
	}
}

func TestScenario(t *testing.T) {
	sim := startSim(t, WithStreamers(200), WithEventRate(2000), WithSeed(3))
	c, _ := connect(t, sim)
	for _, st := range sim.Streamers() {
		c.send(`{"event":"pusher:subscribe","data":{"auth":"","channel":"` + channelName(st) + `"}}`)
	}
	eventually(t, 5*time.Second, "300 transitions", func() bool { return len(sim.Truth()) >= 300 })
	c.readEvent(EventStreamerIsLive, 2*time.Second)
	// Per streamer the truth alternates live/offline and agrees with the state.
	live := map[int64]bool{}
	for _, tr := range sim.Truth() {
		switch tr.Kind {
		case KindLive:
			if live[tr.UserID] {
				t.Fatalf("live twice: %+v", tr)
			}
			live[tr.UserID] = true
		case KindOffline:
			if !live[tr.UserID] {
				t.Fatalf("offline while offline: %+v", tr)
			}
			live[tr.UserID] = false
		}
	}
}

// A rate below one change a second still changes the world (the demo runs at 0.5/s).
func TestSlowScenario(t *testing.T) {
	slow := startSim(t, WithStreamers(10), WithEventRate(0.9), WithSeed(5))
	eventually(t, 5*time.Second, "a transition at 0.9/s", func() bool { return len(slow.Truth()) >= 1 })
}

// The scenario's rate changes at run time through the control API: a
// world started quiet begins to change, and a rate of 0 stops it.
func TestRateControl(t *testing.T) {
	sim := startSim(t, WithStreamers(100), WithLiveFraction(0))
	c := newAPIClient(t, sim)
	post := func(body string) response {
		return c.do(http.MethodPost, sim.ControlURL()+"/rate", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{}`, 400},
		{`{"rate":-1}`, 400},
		{`{"rate":"fast"}`, 400},
		{`{"rate":500}`, 204},
	} {
		if r := post(tc.body); r.status != tc.status {
			t.Errorf("POST /rate %s: %v, want %d", tc.body, r, tc.status)
		}
	}
	eventually(t, 10*time.Second, "changes at 500/s", func() bool { return len(sim.Truth()) >= 50 })
	if r := post(`{"rate":0}`); r.status != 204 {
		t.Fatalf("POST /rate 0: %v", r)
	}
	// The scenario ticks every 5 ms; once a tick has seen rate 0 the
	// truth stops growing. Wait for two equal reads a tick apart.
	eventually(t, 10*time.Second, "the world to stop changing", func() bool {
		n := len(sim.Truth())
		time.Sleep(50 * time.Millisecond)
		return len(sim.Truth()) == n
	})
	n := len(sim.Truth())
	time.Sleep(100 * time.Millisecond)
	if got := len(sim.Truth()); got != n {
		t.Errorf("rate 0: truth grew from %d to %d", n, got)
	}
}

// A quick restart is a new session: its official start is after the
// previous end, so a client can tell the two apart.
func TestQuickRestartHasANewStart(t *testing.T) {
	sim := startSim(t, WithStreamers(1), WithLiveFraction(0))
	id := sim.Streamers()[0].UserID
	for _, f := range []func(int64) error{sim.GoLive, sim.GoOffline, sim.GoLive} {
		if err := f(id); err != nil {
			t.Fatal(err)
		}
	}
	tr := sim.Truth()
	first, end, second := tr[0].StartedAt, tr[1].EndedAt, tr[2].StartedAt
	if !second.After(end) || !second.After(first) {
		t.Errorf("restart: first start %v, end %v, second start %v", first, end, second)
	}
	if !tr[2].PusherCreatedAt.After(second) {
		t.Errorf("pusher created_at %v not after the official start %v", tr[2].PusherCreatedAt, second)
	}
}

func TestControlAPI(t *testing.T) {
	sim := startSim(t, WithStreamers(4))
	c := newAPIClient(t, sim)
	st := sim.Streamers()[0]
	base := sim.ControlURL()
	post := func(path, body string) response {
		return c.do(http.MethodPost, base+path, strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
	}
	id := strconv.FormatInt(st.UserID, 10)
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/streamers/" + id + "/live", "", 204},
		{"/streamers/" + id + "/live", "", 400},
		{"/streamers/" + id + "/title", `{"title":"from control"}`, 204},
		{"/streamers/" + id + "/category", `{"category_id":28}`, 204},
		{"/streamers/" + id + "/viewers", `{"viewers":321}`, 204},
		{"/streamers/" + id + "/noise", "", 204},
		{"/streamers/" + id + "/offline", "", 204},
		{"/streamers/" + id + "/rename", `{"slug":"ctl-renamed"}`, 204},
		{"/streamers/1/live", "", 404},
		{"/streamers/x/live", "", 400},
		{"/faults", `{"endpoint":"channels","count":1,"fault":"429"}`, 204},
		{"/faults", `{"endpoint":"nope","count":1,"fault":"429"}`, 400},
		{"/faults", `{"endpoint":"channels","count":1,"fault":"418"}`, 400},
		{"/tokens/revoke", "", 204},
		{"/sockets/stall", `{"on":false}`, 204},
		{"/sockets/close", `{"code":4200,"reason":"bye"}`, 204},
		{"/sockets/close", `{"code":7}`, 400},
		{"/sockets/drop", "", 204},
		{"/webhooks/url", `{"url":"http://127.0.0.1:1/x"}`, 204},
		{"/webhooks/drop", "", 204},
	} {
		if r := post(tc.path, tc.body); r.status != tc.status {
			t.Errorf("POST %s %s: %v, want %d", tc.path, tc.body, r, tc.status)
		}
	}
	got, _ := sim.Streamer(st.UserID)
	if got.Slug != "ctl-renamed" || got.Title != "from control" || got.CategoryID != 28 || got.Live {
		t.Errorf("streamer after control calls %+v", got)
	}
	// The queued 429 applies; the revoked token gets 401 after it.
	c.token = c.fetchToken()
	if r := c.get("/public/v1/channels", idsQuery("broadcaster_user_id", st.UserID)); r.status != 429 {
		t.Errorf("after control fault: %v", r)
	}
	get := func(path string, v any) {
		t.Helper()
		r := c.do(http.MethodGet, base+path, nil, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %v", path, r)
		}
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var reqs map[string]int
	get("/requests", &reqs)
	if reqs["channels"] != 1 || reqs["token"] != 2 {
		t.Errorf("requests %v", reqs)
	}
	var truth []Transition
	get("/truth?since=2", &truth)
	if len(truth) == 0 || truth[0].Seq != 3 {
		t.Errorf("truth since 2: %+v", truth)
	}
	var one Streamer
	get("/streamers/"+id, &one)
	if one.UserID != st.UserID || one.Slug != "ctl-renamed" {
		t.Errorf("streamer %+v", one)
	}
	var env struct{ Env []string }
	get("/env", &env)
	if diff := cmp.Diff(sim.Env(), env.Env); diff != "" {
		t.Errorf("env -want +got:\n%s", diff)
	}
	var sockets map[string]int
	get("/sockets", &sockets)
	var hooks map[string]any
	get("/webhooks", &hooks)
	if hooks["url"] != "http://127.0.0.1:1/x" {
		t.Errorf("webhooks %v", hooks)
	}
	if !loopback("127.0.0.1:5") || !loopback("[::1]:5") || loopback("10.0.0.1:5") || loopback("garbage") {
		t.Error("loopback check")
	}
}

func TestEnv(t *testing.T) {
	sim := startSim(t, WithStreamers(3), WithCredentials("cid", "csecret"))
	env := sim.Env()
	base := sim.APIURL()
	slugs := make([]string, 0, 3)
	for _, st := range sim.Streamers() {
		slugs = append(slugs, st.Slug)
	}
	want := []string{
		"KICK_AUTH_URL=" + base,
		"KICK_API_URL=" + base,
		"KICK_PUSHER_URL=ws" + strings.TrimPrefix(base, "http") + "/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false",
		"KICK_WEB_URL=" + base,
		"KICK_CENTRIFUGO_URL=ws" + strings.TrimPrefix(base, "http") + "/connection/websocket",
		"KICK_CLIENT_ID=cid",
		"KICK_CLIENT_SECRET=csecret",
		"KICKMON_ALLOW_INSECURE=true",
		"KICKSIM_CONTROL_URL=" + base + "/control",
		"KICKMON_STREAMERS=" + strings.Join(slugs, ","),
	}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	big, err := New(WithStreamers(20000))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	for _, l := range big.Env() {
		if strings.HasPrefix(l, "KICKMON_STREAMERS=") {
			t.Error("KICKMON_STREAMERS over the environment size limit")
		}
	}
}

func TestOptionsValidated(t *testing.T) {
	for _, opts := range [][]Option{
		{WithStreamers(0)},
		{WithEventRate(-1)},
		{WithTokenTTL(0)},
		{WithWebhookDuplicates(2)},
		{WithAppKey("")},
	} {
		if s, err := New(opts...); err == nil {
			_ = s.Close()
			t.Errorf("New accepted bad options")
		}
	}
}
