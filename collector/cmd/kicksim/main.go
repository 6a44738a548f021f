// Command kicksim runs the Kick simulator on a loopback address and prints
// the environment kickcollector needs to use it.
//
//	kicksim --streamers 50 --listen 127.0.0.1:8089 [--seed N] [--rate events/s] [--realtime both]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kickmon/kickmon/collector/kicksim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kicksim: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kicksim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen       = fs.String("listen", "127.0.0.1:0", "address to serve OAuth, REST, Pusher and the control API on")
		streamers    = fs.Int("streamers", 50, "number of streamers in the world")
		seed         = fs.Int64("seed", 1, "seed of the world and the scenario")
		rate         = fs.Float64("rate", 0, "automatic scenario: random changes per second (0: none)")
		liveFraction = fs.Float64("live-fraction", 0.3, "fraction of streamers live at start")
		tokenTTL     = fs.Duration("token-ttl", 60*24*time.Hour, "lifetime of app tokens")
		activity     = fs.Duration("activity-timeout", 120*time.Second, "Pusher activity timeout")
		appKey       = fs.String("app-key", kicksim.DefaultAppKey, "Pusher app key")
		webhookURL   = fs.String("webhook-url", "", "where to deliver webhooks (like Kick's per-app webhook URL)")
		webhookDup   = fs.Float64("webhook-duplicates", 0, "probability of delivering a webhook twice")
		webhookDelay = fs.Duration("webhook-delay", 0, "webhooks are delayed by a random duration up to this")
		logLevel     = fs.String("log-level", "info", "debug, info, warn or error (JSON logs on stderr)")
		realtime     = fs.String("realtime", "both", "realtime providers served and offered by negotiation: pusher, centrifugo, both or none")
		rtTokenTTL   = fs.Duration("realtime-token-ttl", kicksim.DefaultRealtimeTokenTTL, "lifetime of realtime (Centrifugo) tokens")
		cfPing       = fs.Duration("centrifugo-ping", 25*time.Second, "Centrifugo server ping interval ({} every interval; a pong is due within 10s, or half an interval under 15s)")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kicksim [flags]\n\nThe client id and secret come from KICKSIM_CLIENT_ID and KICKSIM_CLIENT_SECRET\n(default: derived from --seed).\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see kicksim -h)", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	rt, err := kicksim.ParseRealtime(*realtime)
	if err != nil {
		return fmt.Errorf("--realtime: %w", err)
	}
	if *cfPing <= 0 {
		return errors.New("--centrifugo-ping must be positive")
	}
	opts := []kicksim.Option{
		kicksim.WithRealtime(rt), kicksim.WithRealtimeTokenTTL(*rtTokenTTL), kicksim.WithCentrifugoPing(*cfPing),
		kicksim.WithStreamers(*streamers), kicksim.WithSeed(*seed), kicksim.WithEventRate(*rate),
		kicksim.WithLiveFraction(*liveFraction), kicksim.WithTokenTTL(*tokenTTL),
		kicksim.WithActivityTimeout(*activity), kicksim.WithAppKey(*appKey),
		kicksim.WithWebhookURL(*webhookURL), kicksim.WithWebhookDuplicates(*webhookDup),
		kicksim.WithWebhookDelay(*webhookDelay),
		kicksim.WithLogger(slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))),
	}
	if id, secret := getenv("KICKSIM_CLIENT_ID"), getenv("KICKSIM_CLIENT_SECRET"); id != "" || secret != "" {
		if id == "" || secret == "" {
			return errors.New("set both KICKSIM_CLIENT_ID and KICKSIM_CLIENT_SECRET, or neither")
		}
		opts = append(opts, kicksim.WithCredentials(id, secret))
	}
	sim, err := kicksim.New(opts...)
	if err != nil {
		return err
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- sim.Serve(ln) }()
	// Serve records the address before it starts accepting; wait for it.
	for sim.APIURL() == "" {
		select {
		case err := <-errc:
			return err
		case <-time.After(time.Millisecond):
		}
	}
	env := sim.Env()
	for _, line := range env {
		fmt.Fprintln(stdout, shellQuote(line))
	}
	if !strings.HasPrefix(env[len(env)-1], "KICKMON_STREAMERS=") {
		// Still end with the line readers wait for (the demo, scripts).
		fmt.Fprintln(stdout, "# the slugs do not fit in one environment variable: add streamers with kickctl")
		fmt.Fprintln(stdout, "KICKMON_STREAMERS=")
	}
	select {
	case <-ctx.Done():
		if err := sim.Close(); err != nil {
			return err
		}
		return <-errc
	case err := <-errc:
		return err
	}
}

// shellQuote single-quotes the value of KEY=VALUE when it holds characters
// a shell would act on (the Pusher URL's '&'), so `. ./sim.env`, `eval` and
// env files all read the same value.
func shellQuote(line string) string {
	k, v, _ := strings.Cut(line, "=")
	if !strings.ContainsAny(v, "&?;|<>()$`\\\"' *#~") {
		return line
	}
	return k + "='" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
