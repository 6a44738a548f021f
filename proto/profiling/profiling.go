// Package profiling owns the daemons' pprof endpoint: it checks the
// KICKMON_PPROF_ADDR setting and serves Go's /debug/pprof/ handlers on it,
// for go tool pprof. Profiles show the process's internals, so the listener
// is refused anywhere but loopback; reach it from elsewhere through an SSH
// tunnel. kickcollector and kickwriter share it.
package profiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// keyAddr is the slog key of the bound address: the same as each daemon's
// keyAddr, which this shared module cannot import.
const keyAddr = "addr"

// CheckAddr returns a problem with addr ("" is fine: off), naming the
// variable: it must be host:port with a loopback IP or "localhost".
func CheckAddr(name, addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q: want host:port", name, addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s=%q: profiles are served on loopback only (127.0.0.1:PORT or [::1]:PORT); use an SSH tunnel to reach them", name, addr)
	}
	return nil
}

// Serve serves /debug/pprof/ on addr until ctx ends.
func Serve(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listen %s: %w", addr, err)
	}
	// Listen resolved "localhost": check what was bound, not the name.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return fmt.Errorf("pprof listen %s: bound %s, which is not loopback", addr, ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile takes its seconds= parameter (30 s by default) to answer.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("pprof listening", keyAddr, ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("pprof server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("pprof server: %w", err)
		}
		return nil
	}
}
