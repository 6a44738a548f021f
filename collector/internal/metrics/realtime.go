package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kickmon/kickmon/collector/internal/realtime"
)

// The realtime feed's metrics: which provider is in use and the Manager's
// and providers' counters (they survive provider switches).
var (
	descRTProvider   = prometheus.NewDesc("kickmon_collector_realtime_provider", "1 for the realtime provider in use (none: every provider 0).", []string{"provider"}, nil)
	descRTUp         = prometheus.NewDesc("kickmon_collector_realtime_up", "1 while a realtime provider works, else 0 (blind or off).", []string{"mode"}, nil)
	descRTNeg        = prometheus.NewDesc("kickmon_collector_realtime_negotiations_total", "Realtime provider negotiations with Kick, by outcome.", []string{"outcome"}, nil)
	descRTTokens     = prometheus.NewDesc("kickmon_collector_realtime_tokens_total", "Centrifugo connection tokens fetched (renewals included), by outcome.", []string{"outcome"}, nil)
	descRTRefusals   = prometheus.NewDesc("kickmon_collector_realtime_provider_refusals_total", "Times a realtime provider refused kickmon (Pusher 4000–4099, Centrifugo terminal codes, refused token).", nil, nil)
	descRTSwitches   = prometheus.NewDesc("kickmon_collector_realtime_provider_starts_total", "Realtime providers taken into use.", nil, nil)
	descRTFrames     = prometheus.NewDesc("kickmon_collector_realtime_frames_total", "Realtime frames or publications read, by provider.", []string{"provider"}, nil)
	descRTBad        = prometheus.NewDesc("kickmon_collector_realtime_bad_frames_total", "Realtime frames or events that could not be decoded, by provider.", []string{"provider"}, nil)
	descRTIgnored    = prometheus.NewDesc("kickmon_collector_realtime_ignored_events_total", "Realtime events that are not live-status events, by provider.", []string{"provider"}, nil)
	descRTUnmatched  = prometheus.NewDesc("kickmon_collector_realtime_unmatched_events_total", "Realtime status events for channels nobody subscribed to, by provider.", []string{"provider"}, nil)
	descRTSubRefused = prometheus.NewDesc("kickmon_collector_realtime_subscription_refusals_total", "Channel subscriptions the realtime server refused, by provider.", []string{"provider"}, nil)
	descRTReconnects = prometheus.NewDesc("kickmon_collector_realtime_reconnects_total", "Realtime connections lost and made again, by provider.", []string{"provider"}, nil)
	descRTObs        = prometheus.NewDesc("kickmon_collector_realtime_observations_total", "Live-status observations from the realtime feed, by provider.", []string{"provider"}, nil)
)

// realtimeCollector reads the realtime Manager at scrape time.
type realtimeCollector struct {
	status func() realtime.Status
}

// Realtime registers the realtime feed's metrics, read from status at
// every scrape.
func (m *Metrics) Realtime(status func() realtime.Status) {
	m.reg.MustRegister(&realtimeCollector{status: status})
}

func (c *realtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRTProvider, descRTUp, descRTNeg, descRTTokens, descRTRefusals, descRTSwitches, descRTFrames, descRTBad, descRTIgnored, descRTUnmatched, descRTSubRefused, descRTReconnects, descRTObs} {
		ch <- d
	}
}

func (c *realtimeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, p := range []string{realtime.Pusher, realtime.Centrifugo} {
		gauge(descRTProvider, b2f(st.Provider == p), p)
	}
	gauge(descRTUp, b2f(st.Provider != ""), st.Mode)
	counter(descRTNeg, st.Stats.Negotiations-st.Stats.NegotiationFailures, "ok")
	counter(descRTNeg, st.Stats.NegotiationFailures, "failed")
	counter(descRTTokens, st.Stats.TokenRenewals, "ok")
	counter(descRTTokens, st.Stats.TokenFailures, "failed")
	counter(descRTRefusals, st.Stats.Refusals)
	counter(descRTSwitches, st.Stats.Switches)
	for p, s := range st.Providers {
		counter(descRTFrames, s.Frames, p)
		counter(descRTBad, s.BadFrames, p)
		counter(descRTIgnored, s.Ignored, p)
		counter(descRTUnmatched, s.Unmatched, p)
		counter(descRTSubRefused, s.Refusals, p)
		counter(descRTReconnects, s.Reconnects, p)
		counter(descRTObs, s.Observations, p)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
