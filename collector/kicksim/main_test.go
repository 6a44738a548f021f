package kicksim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		// centrifuge-go waits for each reply in a goroutine that ends by
		// itself after its ReadTimeout (5 s) once the client is closed.
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/centrifugal/centrifuge-go.(*Client).sendAsync.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testLogger writes the sim's logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startSim starts a sim with test logging.
func startSim(t testing.TB, opts ...Option) *Sim {
	t.Helper()
	return Start(t, append([]Option{WithLogger(testLogger(t))}, opts...)...)
}

// apiClient talks to a sim over HTTP like kickcollector does.
type apiClient struct {
	t     testing.TB
	sim   *Sim
	http  *http.Client
	token string
}

func newAPIClient(t testing.TB, sim *Sim) *apiClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &apiClient{t: t, sim: sim, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	c.token = c.fetchToken()
	return c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

func (c *apiClient) do(method, u string, body io.Reader, hdr map[string]string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		c.t.Fatalf("new request: %v", err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (c *apiClient) tokenRequest(form url.Values) response {
	c.t.Helper()
	return c.do(http.MethodPost, c.sim.AuthURL()+"/oauth/token", strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

func (c *apiClient) fetchToken() string {
	c.t.Helper()
	r := c.tokenRequest(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.sim.ClientID()}, "client_secret": {c.sim.ClientSecret()}})
	if r.status != http.StatusOK {
		c.t.Fatalf("token: %v", r)
	}
	var tr tokenResponse
	mustUnmarshal(c.t, r.body, &tr)
	return tr.AccessToken
}

// get calls the public API with the client's token.
func (c *apiClient) get(path string, q url.Values) response {
	c.t.Helper()
	u := c.sim.APIURL() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.do(http.MethodGet, u, nil, map[string]string{"Authorization": "Bearer " + c.token, "Accept": "application/json"})
}

func (c *apiClient) send(method, path string, body any) response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(marshal(body))
	}
	return c.do(method, c.sim.APIURL()+path, rd, map[string]string{"Authorization": "Bearer " + c.token, "Content-Type": "application/json"})
}

func mustUnmarshal(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("unmarshal %q: %v", b, err)
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// decodeTree decodes JSON into a generic tree; the same decoder serves
// fixtures and kicksim output.
func decodeTree(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	mustUnmarshal(t, b, &v)
	return v
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// shapeDiff compares two decoded JSON trees by key names and JSON types.
// With subset, keys of got that want lacks are allowed. Arrays compare every
// element of got against the first element of want; an empty array on
// either side compares only the type.
func shapeDiff(want, got any, path string, subset bool) []string {
	if wt, gt := jsonType(want), jsonType(got); wt != gt {
		return []string{fmt.Sprintf("%s: type %s, want %s", path, gt, wt)}
	}
	var diffs []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for _, k := range sortedKeys(w) {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			diffs = append(diffs, shapeDiff(w[k], gv, path+"."+k, subset)...)
		}
		if !subset {
			for _, k := range sortedKeys(g) {
				if _, ok := w[k]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected key", path, k))
				}
			}
		}
	case []any:
		g := got.([]any)
		if len(w) > 0 {
			for i, gv := range g {
				diffs = append(diffs, shapeDiff(w[0], gv, fmt.Sprintf("%s[%d]", path, i), subset)...)
			}
		}
	}
	return diffs
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// decodedFrame is a Pusher frame decoded the way a client must: data is a
// JSON string holding JSON.
type decodedFrame struct {
	Raw          map[string]any
	Event        string
	Channel      string
	DataIsString bool
	Data         any
}

func decodeFrame(t testing.TB, b []byte) decodedFrame {
	t.Helper()
	var f decodedFrame
	mustUnmarshal(t, b, &f.Raw)
	f.Event, _ = f.Raw["event"].(string)
	f.Channel, _ = f.Raw["channel"].(string)
	if s, ok := f.Raw["data"].(string); ok {
		f.DataIsString = true
		f.Data = decodeTree(t, []byte(s))
	} else {
		f.Data = f.Raw["data"]
	}
	return f
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
