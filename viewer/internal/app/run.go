package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/kickmon/kickmon/proto/kickapi"
	"github.com/kickmon/kickmon/viewer/internal/logkeys"
)

// Run is kickview's main: it parses flags, opens the log file, connects
// to the collector and shows the dashboard on the terminal until the user
// quits or ctx ends (a clean exit either way).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kickview", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", kickapi.SocketPath(getenv), "kickcollector's socket (env KICKMON_SOCKET)")
	logFile := fs.String("log-file", defaultLogFile(getenv), "where to write logs (the terminal belongs to the dashboard)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: kickview [--socket PATH] [--log-file PATH]\n\nkickview is a live terminal dashboard of kickcollector's streamers.\nPress ? inside for keys. NO_COLOR=1 turns colours off.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}

	logger, closeLog, err := openLog(*logFile, getenv("KICKMON_LOG_LEVEL"))
	if err != nil {
		return err
	}
	defer closeLog()

	conn, err := kickapi.Dial(*socket)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()

	logger.Info("kickview started", logkeys.Socket, *socket)
	a := New(Options{
		Client:  conn,
		Socket:  *socket,
		Logger:  logger,
		NoColor: getenv("NO_COLOR") != "",
	})
	if err := a.Run(ctx); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	logger.Info("kickview stopped")
	return nil
}

// defaultLogFile is $XDG_STATE_HOME/kickmon/kickview.log, else
// ~/.local/state/kickmon/kickview.log, else one in the temp directory.
func defaultLogFile(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "kickmon", "kickview.log")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "kickmon", "kickview.log")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("kickview-%d.log", os.Getuid()))
}

func openLog(path, level string) (*slog.Logger, func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("log file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("log file: %w", err)
	}
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("KICKMON_LOG_LEVEL %q: %w", level, err)
		}
	}
	logger := slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: lvl}))
	return logger, func() { _ = f.Close() }, nil
}
