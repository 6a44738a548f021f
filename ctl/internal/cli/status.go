package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/spf13/cobra"
)

// statusCommand is "kickctl status".
func (e *env) statusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "status",
		Short:             "Show the collector's sources, sockets, token, request budget, spool and writer lag",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	out := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return e.status(cmd.Context(), *out)
	}
	return cmd
}

// status prints the collector's status.
func (e *env) status(ctx context.Context, out outputFormat) error {
	st, err := e.collectorStatus(ctx, "status")
	if err != nil {
		return err
	}
	if out == formatJSON {
		return writeJSON(e.stdout, st) // the notifier's is kickctl notify status -o json
	}
	if err := e.printStatus(e.stdout, st); err != nil {
		return err
	}
	return e.printNotifier(ctx, e.stdout)
}

// collectorStatus asks the collector for its status; op names the command
// in errors.
func (e *env) collectorStatus(ctx context.Context, op string) (st *kickmonv1.CollectorStatus, err error) {
	err = e.unary(ctx, op, func(ctx context.Context, c *kickapi.Conn) error {
		resp, err := c.GetStatus(ctx, &kickmonv1.GetStatusRequest{})
		st = resp.GetStatus()
		return err
	})
	return st, err
}

// printStatus writes the collector's status for a person. The token itself is
// never part of the status, only its validity.
func (e *env) printStatus(w io.Writer, st *kickmonv1.CollectorStatus) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "collector:\t%s, socket %s, started %s\n", cell(st.GetVersion(), 0), e.socket, e.when(st.GetStartedAt()))
	fmt.Fprintf(tw, "streamers:\t%d watched, %d live\n", st.GetStreamers(), st.GetLive())
	if rt := st.GetRealtime(); rt != nil {
		fmt.Fprintf(tw, "realtime:\t%s\n", e.realtime(rt))
	}
	if wh := st.GetWebhooks(); wh != nil {
		fmt.Fprintf(tw, "webhooks:\t%s\n", e.webhooks(wh))
	}
	poll := "-"
	if st.GetPollInterval() != nil {
		poll = st.GetPollInterval().AsDuration().String()
	}
	fmt.Fprintf(tw, "poll interval:\t%s\n", poll)
	fmt.Fprintf(tw, "event watchers:\t%d\n", st.GetWatchers())
	fmt.Fprintf(tw, "token:\t%s\n", e.token(st.GetToken()))
	fmt.Fprintf(tw, "budget:\t%s\n", e.budget(st.GetBudget()))
	sp := st.GetSpool()
	seqs := fmt.Sprintf("seq %d..%d", sp.GetFirstSeq(), sp.GetLastSeq())
	if sp.GetFirstSeq() == 0 {
		seqs = fmt.Sprintf("no events retained (last seq %d)", sp.GetLastSeq())
	}
	fmt.Fprintf(tw, "spool:\t%s, %s of %s, %s, acked %d\n", cell(sp.GetPath(), 0),
		bytesize(sp.GetSizeBytes()), bytesize(sp.GetMaxBytes()), seqs, sp.GetAckedSeq())
	fmt.Fprintf(tw, "writer lag:\t%s\n", e.writerLag(sp))
	if len(sp.GetLost()) > 0 {
		var ranges []string
		for _, r := range sp.GetLost() {
			ranges = append(ranges, fmt.Sprintf("%d..%d", r.GetFirst(), r.GetLast()))
		}
		fmt.Fprintf(tw, "lost events:\t%s (dropped before the writer acknowledged them)\n", strings.Join(ranges, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "SOURCE\tHEALTH\tCOVERED\tLAST SUCCESS\tBREAKER\tDETAIL\tLAST ERROR")
	for _, s := range st.GetSources() {
		lastErr := "-"
		if s.GetLastError() != "" {
			lastErr = e.ago(s.GetLastErrorAt()) + ": " + cell(s.GetLastError(), 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", sourceName(s.GetSource()), healthName(s.GetHealth()),
			s.GetStreamersCovered(), e.ago(s.GetLastSuccessAt()), cell(s.GetBreakerState(), 0), cell(s.GetDetail(), 40), lastErr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if len(st.GetSockets()) == 0 {
		fmt.Fprintln(w, "no realtime sockets")
		return nil
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "SOCKET\tPROVIDER\tSTATE\tCHANNELS\tCONNECTED\tRECONNECTS\tLAST CLOSE\tLAST ERROR")
	for _, s := range st.GetSockets() {
		closeCode := "-"
		if s.GetLastCloseCode() != 0 {
			closeCode = fmt.Sprint(s.GetLastCloseCode())
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", s.GetId(), cell(cmp.Or(s.GetProvider(), "-"), 0), cell(s.GetState(), 0), s.GetChannels(),
			e.since(s.GetConnectedSince()), s.GetReconnects(), closeCode, cell(s.GetLastError(), 60))
	}
	return tw.Flush()
}

// realtime says in words which realtime provider is in use and since when,
// or that the feed is blind and why.
func (e *env) realtime(rt *kickmonv1.RealtimeStatus) string {
	var b strings.Builder
	switch {
	case rt.GetHealth() == kickmonv1.Health_HEALTH_DISABLED:
		fmt.Fprintf(&b, "off (%s); polling carries on", cell(rt.GetBlindReason(), 0))
		return b.String()
	case rt.GetProvider() == "":
		fmt.Fprintf(&b, "BLIND: %s; polling carries on", cell(rt.GetBlindReason(), 0))
	default:
		how := "negotiated"
		if !rt.GetNegotiated() {
			how = "fallback URL"
		}
		fmt.Fprintf(&b, "%s (%s) since %s", rt.GetProvider(), how, e.when(rt.GetProviderSince()))
		if rt.GetHealth() != kickmonv1.Health_HEALTH_OK {
			fmt.Fprintf(&b, ", %s", healthName(rt.GetHealth()))
		}
	}
	fmt.Fprintf(&b, ", %d streamer%s blind, mode %s", rt.GetStreamersBlind(), plural(int(rt.GetStreamersBlind())), cell(rt.GetMode(), 0))
	if t := rt.GetTokenExpiresAt(); t != nil {
		fmt.Fprintf(&b, ", token expires %s", e.ago(t))
	}
	if rt.GetLastNegotiationError() != "" {
		fmt.Fprintf(&b, ", last negotiation %s: %s", e.ago(rt.GetLastNegotiationAt()), cell(rt.GetLastNegotiationError(), 0))
	}
	return b.String()
}

// webhooks summarises the webhook subscriptions.
func (e *env) webhooks(wh *kickmonv1.WebhookStatus) string {
	s := fmt.Sprintf("%d subscribed, %d not subscribed, last delivery %s", wh.GetSubscribed(), wh.GetUnsubscribed(), e.ago(wh.GetLastDeliveryAt()))
	if wh.GetCapReached() {
		s += ", KICK'S SUBSCRIPTION LIMIT REACHED"
	}
	if wh.GetLastError() != "" {
		s += ", last error: " + cell(wh.GetLastError(), 0)
	}
	return s
}

func (e *env) token(t *kickmonv1.TokenStatus) string {
	var b strings.Builder
	if t.GetValid() {
		fmt.Fprintf(&b, "valid, expires %s", e.ago(t.GetExpiresAt()))
	} else {
		b.WriteString("NOT VALID")
	}
	fmt.Fprintf(&b, ", %d renewal%s", t.GetRenewals(), plural(int(t.GetRenewals())))
	if t.GetLastError() != "" {
		fmt.Fprintf(&b, ", last error: %s", cell(t.GetLastError(), 0))
	}
	return b.String()
}

func (e *env) budget(bs *kickmonv1.BudgetStatus) string {
	s := fmt.Sprintf("%d of %d requests/min used, %d rate-limited (429) since start",
		bs.GetUsedLastMinute(), bs.GetRequestsPerMinute(), bs.GetRateLimitedTotal())
	if bu := bs.GetBackoffUntil(); bu != nil && bu.AsTime().After(e.now()) {
		s += ", backing off until " + e.clock(bu).Format("15:04:05") + " (" + e.ago(bu) + ")"
	}
	return s
}

// writerLag is how far the writer is behind: last_seq - acked_seq, and the
// time since its last acknowledgement.
func (e *env) writerLag(sp *kickmonv1.SpoolStatus) string {
	lag := uint64(0)
	if sp.GetLastSeq() > sp.GetAckedSeq() {
		lag = sp.GetLastSeq() - sp.GetAckedSeq()
	}
	return fmt.Sprintf("%d event%s, last ack %s", lag, plural(int(lag)), e.ago(sp.GetAckedAt()))
}
