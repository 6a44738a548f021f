package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	kickmonv1 "github.com/kickmon/kickmon/proto/gen/kickmon/v1"
	"github.com/spf13/cobra"
)

// Thresholds of doctor's checks: below warn is ✔, from warn on !, from fail on ✘.
const (
	spoolFillWarn, spoolFillFail = 0.80, 0.95
	writerLagWarn, writerLagFail = 30 * time.Second, 5 * time.Minute
	clockSkewWarn, clockSkewFail = 2 * time.Second, time.Minute // Date has 1 s resolution
	// Oldest notification job (event or delivery) still waiting: a go-live
	// message that late has lost most of its point.
	notifyBacklogWarn, notifyBacklogFail = 5 * time.Minute, time.Hour
	slugsPerReason                       = 3 // blind slugs named per reason
)

// checkState is the outcome of one doctor check.
type checkState string

const (
	checkOK   checkState = "ok"   // ✔
	checkWarn checkState = "warn" // !: works, but needs attention
	checkFail checkState = "fail" // ✘: broken; doctor exits 1
)

func (s checkState) mark() string {
	switch s {
	case checkOK:
		return "✔"
	case checkWarn:
		return "!"
	}
	return "✘"
}

// check is one line of doctor: what was checked, how it went, and the fix
// (empty when ✔). It is also the -o json shape.
type check struct {
	Name    string     `json:"name"`
	State   checkState `json:"state"`
	Summary string     `json:"summary"`
	Fix     string     `json:"fix"`
}

// doctorReport is doctor's -o json document.
type doctorReport struct {
	// OK is false when any check failed (the exit code is then 1).
	OK     bool    `json:"ok"`
	Checks []check `json:"checks"`
}

// doctorCommand is "kickctl doctor [--strict] [-o table|json]".
func (e *env) doctorCommand() *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that everything works and say how to fix what does not (exit 1 if anything is ✘)",
		Long: `Check that everything works and say how to fix what does not: the socket and your access,
the collector, the Kick token, each source's coverage, the spool, the writer's lag, the clock
and kicknotify's deliveries (optional: a warning when it is not running).

Each check is ✔ (fine), ! (works, needs attention) or ✘ (broken), with the fix in one line.
Exit 0 when nothing is ✘ (warnings allowed; --strict makes them exit 1 too), 1 otherwise.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	out := outputFlag(cmd)
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 on warnings (!) too")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return e.doctor(cmd.Context(), *out, strict)
	}
	return cmd
}

// doctor runs the checks, prints them and returns errReported when one
// failed (or warned, with strict).
func (e *env) doctor(ctx context.Context, out outputFormat, strict bool) error {
	checks := e.diagnose(ctx)
	report := doctorReport{OK: true, Checks: checks}
	failed, warned := 0, 0
	for _, c := range checks {
		switch c.State {
		case checkFail:
			failed++
			report.OK = false
		case checkWarn:
			warned++
		}
	}
	if out == formatJSON {
		b, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return fmt.Errorf("encode doctor report: %w", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		printChecks(e.stdout, checks, failed, warned)
	}
	if failed > 0 || strict && warned > 0 {
		return errReported
	}
	return nil
}

// printChecks writes one line per check, its fix under it, and a verdict.
func printChecks(w io.Writer, checks []check, failed, warned int) {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	for _, c := range checks {
		fmt.Fprintf(w, "%s %-*s  %s\n", c.State.mark(), width, c.Name, c.Summary)
		if c.Fix != "" {
			fmt.Fprintf(w, "  %*s  fix: %s\n", width, "", c.Fix)
		}
	}
	switch {
	case len(checks) == 1 && failed == 1:
		fmt.Fprintln(w, "\n1 problem; the other checks need an answering collector")
	case failed > 0:
		fmt.Fprintf(w, "\n%d problem%s, %d warning%s\n", failed, plural(failed), warned, plural(warned))
	case warned > 0:
		fmt.Fprintf(w, "\nno problems, %d warning%s\n", warned, plural(warned))
	default:
		fmt.Fprintln(w, "\nall checks passed")
	}
}

// diagnose asks the collector for its status and watch list and judges them.
func (e *env) diagnose(ctx context.Context) []check {
	st, err := e.collectorStatus(ctx, "doctor")
	if err != nil {
		return []check{socketFailed(err)}
	}
	checks := []check{
		{Name: "socket", State: checkOK, Summary: "kickcollector answers at " + e.socket},
		e.accessCheck(),
	}
	list, err := e.streamers(ctx, false)
	if err != nil {
		return append(checks, check{Name: "streamers", State: checkFail, Summary: err.Error(), Fix: "journalctl -u kickmon-collector"})
	}
	d := diagnosis{env: e, st: st, streamers: list.GetStreamers()}
	checks = append(checks, d.collector(), d.token(), d.poller(), d.realtime(), d.webhooks(), d.spool(), d.writer(), d.clock())
	if e.notifySocket != "" { // --notify-socket '' skips it, as in kickctl status
		checks = append(checks, e.notifierCheck(ctx))
	}
	return checks
}

// notifierCheck asks kicknotify for its status. kicknotify is optional, so
// not running or not reachable is a warning; a target that keeps failing
// (or a backlog an hour old) is a failure.
func (e *env) notifierCheck(ctx context.Context) check {
	c := check{Name: "notifier", State: checkWarn}
	if _, err := os.Stat(e.notifySocket); errors.Is(err, fs.ErrNotExist) {
		c.Summary = "not running (no socket at " + e.notifySocket + "): no go-live notifications are sent"
		c.Fix = "sudo systemctl enable --now kickmon-notify (see README, Notifications), or point --notify-socket / KICKMON_NOTIFY_SOCKET at its socket; --notify-socket '' skips this check"
		return c
	}
	st, err := e.notifierStatus(ctx)
	if err != nil {
		c.Summary, c.Fix = err.Error(), reachFix(err.Error(), "kickmon-notify", "--notify-socket / KICKMON_NOTIFY_SOCKET")
		return c
	}
	return e.judgeNotifier(st)
}

// judgeNotifier is notifierCheck's verdict on kicknotify's answer. A target
// keeps failing when it gave deliveries up in 24 h and has not delivered
// since its last error (✘); given up earlier but delivering again, or
// failing now with retries left, it is a warning.
func (e *env) judgeNotifier(st *kickmonv1.GetNotifierStatusResponse) check {
	c := check{Name: "notifier", State: checkOK, Summary: e.notifierSummary(st)}
	var failing, flaky []string
	named := "TARGET" // the first target in trouble, for the fix
	for _, t := range st.GetTargets() {
		lastErr := t.GetLastErrorAt().AsTime()
		erring := t.GetLastError() != "" && (t.GetLastDeliveredAt() == nil || lastErr.After(t.GetLastDeliveredAt().AsTime()))
		why := ""
		if t.GetLastError() != "" {
			why = ", last error " + e.ago(t.GetLastErrorAt()) + ": " + cell(t.GetLastError(), 60)
		}
		if named == "TARGET" && (t.GetFailed() > 0 || t.GetRetrying() > 0 && erring) {
			named = cell(t.GetName(), 0)
		}
		switch {
		case t.GetFailed() > 0 && erring:
			failing = append(failing, fmt.Sprintf("%s keeps failing (%d given up in 24h%s)", cell(t.GetName(), 0), t.GetFailed(), why))
		case t.GetFailed() > 0:
			flaky = append(flaky, fmt.Sprintf("%s gave up %d deliver%s in 24h, delivering again since", cell(t.GetName(), 0), t.GetFailed(), pluralY(t.GetFailed())))
		case t.GetRetrying() > 0 && erring:
			flaky = append(flaky, fmt.Sprintf("%s failing, %d retrying%s", cell(t.GetName(), 0), t.GetRetrying(), why))
		}
	}
	var waited time.Duration
	if st.GetOldestPendingAt() != nil {
		waited = max(0, e.now().Sub(st.GetOldestPendingAt().AsTime()))
	}
	for _, s := range append(failing, flaky...) {
		c.Summary += "; " + s
	}
	switch {
	case len(failing) > 0:
		c.State = checkFail
		c.Fix = "kickctl notify test " + named + " shows the target's answer; fix its url or secret in notify.yaml, then sudo systemctl restart kickmon-notify"
	case waited >= notifyBacklogFail:
		c.State, c.Fix = checkFail, "notifications are late: systemctl status kickmon-notify; journalctl -u kickmon-notify"
	case len(flaky) > 0:
		c.State = checkWarn
		c.Fix = "deliveries are retried (up to 20 attempts); kickctl notify test " + named + " shows the target's answer"
	case waited >= notifyBacklogWarn:
		c.State, c.Fix = checkWarn, "notifications are late: kickctl notify status; journalctl -u kickmon-notify"
	}
	return c
}

// pluralY is "y" for one, "ies" otherwise (delivery, deliveries).
func pluralY(n int64) string {
	if n == 1 {
		return "y"
	}
	return "ies"
}

// socketFailed explains an unreachable collector (kickapi.Explain through
// rpcError) and picks the fix for the reason it gives.
func socketFailed(err error) check {
	return check{Name: "socket", State: checkFail, Summary: err.Error(),
		Fix: reachFix(err.Error(), "kickmon-collector", "--socket / KICKMON_SOCKET")}
}

// reachFix is the fix for a daemon (its systemd unit, the flag and env
// naming its socket) that cannot be reached for the reason msg gives.
func reachFix(msg, unit, socketFlags string) string {
	switch {
	case strings.Contains(msg, "permission denied"):
		return "sudo usermod -aG kickmon $USER, then log in again (or run as a member of the socket's group)"
	case strings.Contains(msg, "stale socket"):
		return "it is not running: sudo systemctl restart " + unit + " (it removes the stale socket)"
	case strings.Contains(msg, "no such file"):
		return "sudo systemctl start " + unit + ", or point " + socketFlags + " at its socket"
	}
	return "systemctl status " + unit + "; journalctl -u " + unit
}

// accessCheck says whether this user may change the collector (add, remove,
// refresh): the collector lets root, its own user and members of its admin
// group, which is the socket's group by default (KICKMON_ADMIN_GROUP).
func (e *env) accessCheck() check {
	fi, err := os.Stat(e.socket)
	if err != nil {
		return check{Name: "access", State: checkWarn, Summary: "cannot inspect the socket: " + err.Error(), Fix: "ls -l " + e.socket}
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return check{Name: "access", State: checkWarn, Summary: "cannot read the socket's owner", Fix: "ls -l " + e.socket}
	}
	uid, gids := currentIdentity()
	return socketAccess(uid, gids, int(sys.Uid), int(sys.Gid), groupName(int(sys.Gid)))
}

// socketAccess is accessCheck's decision for a user (uid, gids) and a socket
// owned by ownerUID:ownerGID (group called group).
func socketAccess(uid int, gids []int, ownerUID, ownerGID int, group string) check {
	c := check{Name: "access", State: checkOK}
	switch {
	case uid == ownerUID:
		c.Summary = "read and change: you run as the collector's user"
	case uid == 0:
		c.Summary = "read and change: you are root"
	case slices.Contains(gids, ownerGID):
		c.Summary = fmt.Sprintf("read and change: you are in group %s", group)
	default:
		c.State = checkWarn
		c.Summary = fmt.Sprintf("read only: you are not in group %s, so streamers add/remove/refresh are refused", group)
		c.Fix = fmt.Sprintf("sudo usermod -aG %s $USER, then log in again", group)
	}
	return c
}

// currentIdentity is this process's uid and groups.
func currentIdentity() (int, []int) {
	gids, _ := os.Getgroups()
	return os.Getuid(), append(gids, os.Getgid())
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// diagnosis judges one answer of the collector.
type diagnosis struct {
	*env
	st        *kickmonv1.CollectorStatus
	streamers []*kickmonv1.Streamer
}

func (d diagnosis) collector() check {
	return check{Name: "collector", State: checkOK, Summary: fmt.Sprintf("%s, up %s, %d streamer%s watched (%d live)",
		cell(d.st.GetVersion(), 0), d.since(d.st.GetStartedAt()), d.st.GetStreamers(), plural(int(d.st.GetStreamers())), d.st.GetLive())}
}

func (d diagnosis) token() check {
	t := d.st.GetToken()
	if !t.GetValid() {
		summary := "not valid"
		if t.GetLastError() != "" {
			summary += ": " + cell(t.GetLastError(), 0)
		}
		return check{Name: "token", State: checkFail, Summary: summary,
			Fix: "check KICK_CLIENT_ID and KICK_CLIENT_SECRET against Kick's developer settings; journalctl -u kickmon-collector"}
	}
	return check{Name: "token", State: checkOK, Summary: fmt.Sprintf("valid, expires %s (renewed automatically)", d.ago(t.GetExpiresAt()))}
}

// source is the status of source s, or nil.
func (d diagnosis) source(s kickmonv1.Source) *kickmonv1.SourceStatus {
	for _, x := range d.st.GetSources() {
		if x.GetSource() == s {
			return x
		}
	}
	return nil
}

func (d diagnosis) poller() check {
	p, b := d.source(kickmonv1.Source_SOURCE_POLL), d.st.GetBudget()
	c := check{Name: "poller", State: healthState(p.GetHealth())}
	parts := []string{healthName(p.GetHealth())}
	if rpm := b.GetRequestsPerMinute(); rpm > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d requests/min (%d%%)", b.GetUsedLastMinute(), rpm, b.GetUsedLastMinute()*100/rpm))
	}
	breakers := p.GetBreakerState()
	if breakers == "" {
		breakers = "none"
	}
	parts = append(parts, "breakers "+breakers, fmt.Sprintf("%d of %d covered", p.GetStreamersCovered(), d.st.GetStreamers()))
	if bu := b.GetBackoffUntil(); bu != nil && bu.AsTime().After(d.now()) {
		parts = append(parts, "backing off for "+duration(bu.AsTime().Sub(d.now())))
	}
	c.Summary = strings.Join(parts, ", ")
	if p.GetLastError() != "" && c.State != checkOK {
		c.Summary += "; last error " + d.ago(p.GetLastErrorAt()) + ": " + cell(p.GetLastError(), 60)
	}
	switch {
	case p.GetHealth() == kickmonv1.Health_HEALTH_BLOCKED:
		c.Fix = "Kick refuses this address (403 or a Cloudflare page): wait, or run from another network; journalctl -u kickmon-collector"
	case p.GetHealth() == kickmonv1.Health_HEALTH_RATE_LIMITED:
		c.Fix = "Kick answered 429: lower KICKMON_API_BUDGET or watch fewer streamers"
	case strings.Contains(breakers, "open"):
		c.State = worse(c.State, checkWarn)
		c.Fix = "an endpoint keeps failing, its breaker retries by itself; journalctl -u kickmon-collector"
	case c.State != checkOK:
		c.Fix = "journalctl -u kickmon-collector"
	case b.GetRequestsPerMinute() > 0 && b.GetUsedLastMinute() >= b.GetRequestsPerMinute():
		c.State = checkWarn
		c.Fix = "the whole budget is used: raise KICKMON_API_BUDGET or KICKMON_POLL_INTERVAL, or watch fewer streamers"
	}
	return c
}

func (d diagnosis) realtime() check {
	rt := d.st.GetRealtime()
	c := check{Name: "realtime", State: healthState(rt.GetHealth())}
	var parts []string
	reportedBlind := rt.GetStreamersBlind()
	switch {
	case rt == nil:
		// A collector from before RealtimeStatus: judge its Pusher source.
		p := d.source(kickmonv1.Source_SOURCE_PUSHER)
		if p == nil {
			return check{Name: "realtime", State: checkWarn, Summary: "not reported by this collector",
				Fix: "upgrade kickcollector to one that reports its realtime feed"}
		}
		c.State = healthState(p.GetHealth())
		reportedBlind = max(0, d.st.GetStreamers()-p.GetStreamersCovered())
		s := "pusher " + healthName(p.GetHealth())
		if p.GetDetail() != "" {
			s += " (" + cell(p.GetDetail(), 60) + ")"
		}
		parts = append(parts, s)
		if c.State != checkOK {
			c.Fix = "the poller still covers every streamer; journalctl -u kickmon-collector"
		}
	case rt.GetHealth() == kickmonv1.Health_HEALTH_DISABLED || rt.GetMode() == "off":
		return check{Name: "realtime", State: checkOK, Summary: "off by configuration (KICK_REALTIME=off): starts are seen by polling only"}
	case rt.GetProvider() == "":
		c.State = checkFail
		reason := cmp.Or(cell(rt.GetBlindReason(), 0), cell(rt.GetLastNegotiationError(), 0), "no provider works")
		parts = append(parts, "blind: "+reason)
		c.Fix = "the poller still covers every streamer; journalctl -u kickmon-collector, and see KICK_REALTIME in README"
	default:
		how := "configured"
		if rt.GetNegotiated() {
			how = "negotiated"
		}
		parts = append(parts, fmt.Sprintf("%s (%s, mode %s) since %s", rt.GetProvider(), how, cmp.Or(rt.GetMode(), "auto"), d.ago(rt.GetProviderSince())))
		if c.State != checkOK {
			c.Fix = "journalctl -u kickmon-collector"
		}
	}
	blind := d.blindRealtime()
	n := 0
	for _, b := range blind {
		n += len(b.slugs)
	}
	n = max(n, int(reportedBlind))
	if n == 0 {
		parts = append(parts, "every streamer seen")
	} else {
		var reasons []string
		for _, b := range blind {
			names := b.slugs[:min(len(b.slugs), slugsPerReason)]
			more := ""
			if len(b.slugs) > slugsPerReason {
				more = fmt.Sprintf(" +%d more", len(b.slugs)-slugsPerReason)
			}
			if b.reason == rt.GetBlindReason() {
				reasons = append(reasons, fmt.Sprintf("%s%s", strings.Join(names, ", "), more))
			} else {
				reasons = append(reasons, fmt.Sprintf("%s (%s%s)", b.reason, strings.Join(names, ", "), more))
			}
		}
		s := fmt.Sprintf("%d of %d streamer%s blind", n, len(d.streamers), plural(len(d.streamers)))
		if len(reasons) > 0 {
			s += ": " + strings.Join(reasons, "; ")
		}
		parts = append(parts, s)
		if c.State == checkOK {
			c.State = checkWarn
			c.Fix = "kickctl streamers show SLUG says why; the poller still covers them"
			if len(blind) > 0 && blind[0].reason == "no channel id" {
				c.Fix = "kickctl streamers add SLUG --channel-id N, N being \"id\" in kick.com/api/v2/channels/SLUG (learned by itself once they go live; polled meanwhile)"
			}
		}
	}
	c.Summary = strings.Join(parts, "; ")
	return c
}

// blindGroup is the watched streamers the realtime feed misses for one reason.
type blindGroup struct {
	reason string
	slugs  []string
}

// blindRealtime groups the streamers with a blind realtime coverage by
// reason, the largest group first.
func (d diagnosis) blindRealtime() []blindGroup {
	by := map[string][]string{}
	for _, s := range d.streamers {
		for _, c := range s.GetCoverage() {
			realtime := c.GetSource() == kickmonv1.Source_SOURCE_PUSHER || c.GetSource() == kickmonv1.Source_SOURCE_CENTRIFUGO
			if realtime && c.GetBlind() {
				reason := cmp.Or(cell(c.GetReason(), 0), "no reason given")
				by[reason] = append(by[reason], s.GetSlug())
				break
			}
		}
	}
	var groups []blindGroup
	for reason, slugs := range by {
		groups = append(groups, blindGroup{reason: reason, slugs: slugs})
	}
	slices.SortFunc(groups, func(a, b blindGroup) int {
		return cmp.Or(cmp.Compare(len(b.slugs), len(a.slugs)), cmp.Compare(a.reason, b.reason))
	})
	return groups
}

func (d diagnosis) webhooks() check {
	w := d.st.GetWebhooks()
	if w == nil {
		detail := "off"
		if s := d.source(kickmonv1.Source_SOURCE_WEBHOOK); s.GetDetail() != "" {
			detail += " (" + cell(s.GetDetail(), 0) + ")"
		}
		return check{Name: "webhooks", State: checkOK, Summary: detail}
	}
	c := check{Name: "webhooks", State: checkOK,
		Summary: fmt.Sprintf("%d subscribed, %d not, last delivery %s", w.GetSubscribed(), w.GetUnsubscribed(), d.ago(w.GetLastDeliveryAt()))}
	switch {
	case w.GetCapReached():
		c.State = checkWarn
		c.Summary += "; Kick's subscription limit reached"
		c.Fix = "watch fewer streamers; the others are still polled"
	case w.GetUnsubscribed() > 0:
		c.State = checkWarn
		if w.GetLastError() != "" {
			c.Summary += "; last error: " + cell(w.GetLastError(), 60)
		}
		c.Fix = "subscriptions are retried; journalctl -u kickmon-collector says why they fail"
	}
	return c
}

func (d diagnosis) spool() check {
	sp := d.st.GetSpool()
	fill := 0.0
	if sp.GetMaxBytes() > 0 {
		fill = float64(sp.GetSizeBytes()) / float64(sp.GetMaxBytes())
	}
	c := check{Name: "spool", State: checkOK, Summary: fmt.Sprintf("%s of %s (%d%%)", bytesize(sp.GetSizeBytes()), bytesize(sp.GetMaxBytes()), int(math.Round(fill*100)))}
	if sp.GetOldestUnackedAt() != nil {
		c.Summary += ", oldest unacknowledged event " + d.ago(sp.GetOldestUnackedAt())
	} else {
		c.Summary += ", everything acknowledged"
	}
	if n := lostEvents(sp); n > 0 {
		c.Summary += fmt.Sprintf(", %d event%s lost earlier", n, plural(int(n)))
	}
	switch {
	case fill >= spoolFillFail:
		c.State = checkFail
	case fill >= spoolFillWarn:
		c.State = checkWarn
	}
	if c.State != checkOK {
		c.Fix = "unacknowledged events are dropped when it is full: get the writer going (systemctl status kickmon-writer) or raise KICKMON_SPOOL_MAX_BYTES"
	}
	return c
}

func lostEvents(sp *kickmonv1.SpoolStatus) uint64 {
	var n uint64
	for _, r := range sp.GetLost() {
		n += r.GetLast() - r.GetFirst() + 1
	}
	return n
}

func (d diagnosis) writer() check {
	sp := d.st.GetSpool()
	lag := uint64(0)
	if sp.GetLastSeq() > sp.GetAckedSeq() {
		lag = sp.GetLastSeq() - sp.GetAckedSeq()
	}
	var behind time.Duration
	if sp.GetOldestUnackedAt() != nil && lag > 0 {
		behind = max(0, d.now().Sub(sp.GetOldestUnackedAt().AsTime()))
	}
	c := check{Name: "writer", State: checkOK,
		Summary: fmt.Sprintf("%d event%s behind (%s), last ack %s, %d event watcher%s", lag, plural(int(lag)), duration(behind), d.ago(sp.GetAckedAt()), d.st.GetWatchers(), plural(int(d.st.GetWatchers())))}
	const fix = "systemctl status kickmon-writer; journalctl -u kickmon-writer"
	switch {
	case lag > 0 && sp.GetAckedAt() == nil:
		c.State, c.Fix = checkFail, "the writer never acknowledged an event: "+fix
	case behind >= writerLagFail:
		c.State, c.Fix = checkFail, fix
	case behind >= writerLagWarn:
		c.State, c.Fix = checkWarn, "the writer is behind: "+fix
	case d.st.GetWatchers() == 0:
		c.State, c.Fix = checkWarn, "nothing follows the event log, so nothing reaches PostgreSQL: "+fix
	}
	return c
}

func (d diagnosis) clock() check {
	skew := d.st.GetKickClockSkew()
	if skew == nil {
		return check{Name: "clock", State: checkWarn, Summary: "skew against Kick unknown: no answer from Kick yet", Fix: "see the token and poller checks"}
	}
	s := skew.AsDuration()
	c := check{Name: "clock", State: checkOK}
	switch {
	case max(s, -s) < time.Second:
		c.Summary = "in step with Kick's (" + s.Round(10*time.Millisecond).String() + ")"
	case s > 0:
		c.Summary = "Kick's clock is " + duration(s) + " ahead of ours"
	case s < 0:
		c.Summary = "Kick's clock is " + duration(-s) + " behind ours"
	}
	abs := max(s, -s)
	switch {
	case abs >= clockSkewFail:
		c.State = checkFail
	case abs >= clockSkewWarn:
		c.State = checkWarn
	}
	if c.State != checkOK {
		c.Fix = "stream times are stamped with this clock: sudo timedatectl set-ntp true (or check chrony/ntpd)"
	}
	return c
}

// healthState maps a source's health to a check state.
func healthState(h kickmonv1.Health) checkState {
	switch h {
	case kickmonv1.Health_HEALTH_OK, kickmonv1.Health_HEALTH_DISABLED:
		return checkOK
	case kickmonv1.Health_HEALTH_DEGRADED, kickmonv1.Health_HEALTH_RATE_LIMITED:
		return checkWarn
	}
	return checkFail
}

// worse is the worse of two states (fail over warn over ok).
func worse(a, b checkState) checkState {
	if a == checkFail || b == checkFail {
		return checkFail
	}
	if a == checkWarn || b == checkWarn {
		return checkWarn
	}
	return checkOK
}
