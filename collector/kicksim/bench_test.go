package kicksim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkSimChannels measures GET /public/v1/channels with 50 ids per call
// against a 100k-streamer world, from parallel clients.
func BenchmarkSimChannels(b *testing.B) {
	sim := Start(b, WithStreamers(100_000), WithLiveFraction(0.3))
	tok := sim.IssueToken()
	all := sim.Streamers()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(50)) % (len(all) - 50)
			q := url.Values{}
			for _, st := range all[i : i+50] {
				q.Add("broadcaster_user_id", strconv.FormatInt(st.UserID, 10))
			}
			req, _ := http.NewRequest(http.MethodGet, sim.APIURL()+"/public/v1/channels?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var buf [32 << 10]byte
			for {
				if _, err := resp.Body.Read(buf[:]); err != nil {
					break
				}
			}
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/el, "calls/s")
	b.ReportMetric(float64(b.N*50)/el, "streamers/s")
}

// BenchmarkSimEvents measures world changes fanned out to Pusher sockets:
// a 100k-streamer world, every channel subscribed once over 50 sockets
// (2,000 channels per socket), random changes as the automatic scenario
// makes them. It reports changes/s and frames/s received by the clients.
func BenchmarkSimEvents(b *testing.B) {
	sim := Start(b, WithStreamers(100_000), func(o *options) { o.socketBuffer = 1 << 20 })
	all := sim.Streamers()
	const sockets = 50
	var received atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, 0, sockets)
	for i := 0; i < sockets; i++ {
		conn, resp, err := websocket.DefaultDialer.Dial(sim.PusherURL(), nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		conns = append(conns, conn)
		var sb strings.Builder
		for j := i; j < len(all); j += sockets {
			sb.Reset()
			sb.WriteString(`{"event":"pusher:subscribe","data":{"auth":"","channel":"channel.`)
			sb.WriteString(strconv.FormatInt(all[j].ChannelID, 10))
			sb.WriteString(`"}}`)
			if err := conn.WriteMessage(websocket.TextMessage, []byte(sb.String())); err != nil {
				b.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				if strings.Contains(string(msg[:min(len(msg), 40)]), `App\\Events`) {
					received.Add(1)
				}
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
		wg.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for sim.Subscriptions("channel."+strconv.FormatInt(all[len(all)-1].ChannelID, 10)) == 0 {
		if time.Now().After(deadline) {
			b.Fatal("subscriptions not done")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the last subscription_succeeded frames
	base := received.Load()
	frames0 := sim.hub.frames.Load()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sim.world.step()
	}
	want := sim.hub.frames.Load() - frames0
	for received.Load()-base < want {
		if time.Since(start) > time.Minute {
			b.Fatalf("received %d of %d frames", received.Load()-base, want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el, "changes/s")
	b.ReportMetric(float64(want)/el, "frames/s")
	if n := sim.Sockets(); n != sockets {
		b.Errorf("%d sockets left, want %d (slow consumers closed?)", n, sockets)
	}
}

// BenchmarkSimWebhooks measures signed webhook deliveries (RSA-2048
// signatures dominate).
func BenchmarkSimWebhooks(b *testing.B) {
	var got atomic.Int64
	srv := newWebhookSink(b)
	srv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) })
	sim := Start(b, WithStreamers(1000), WithWebhookURL(srv.url()))
	for _, st := range sim.Streamers() {
		sim.hooks.subscribe(st.UserID, WebhookStatusUpdated, 1)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sim.world.step()
	}
	want := sim.WebhookStats().Queued
	for got.Load() < want {
		if time.Since(start) > time.Minute {
			b.Fatalf("delivered %d of %d", got.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(want)/el, "deliveries/s")
}
