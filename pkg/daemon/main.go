package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/stoa-gateway/stoa/pkg/version"
)

// Main runs stoad with the process's arguments and environment and
// returns its exit code.
func Main() int {
	return run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := ParseFlags(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "stoad:", err)
		return 2
	}
	if cfg.ShowVersion {
		fmt.Fprintln(stdout, version.String("stoad"))
		return 0
	}
	log := NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	runtimes := DefaultRuntimes
	if cfg.ControlPlane() {
		runtimes = ControlPlaneRuntimes
	}
	d, err := New(cfg, log, Options{Runtimes: runtimes, Banner: stderr})
	if err != nil {
		fmt.Fprintln(stderr, "stoad:", err)
		return 1
	}
	if err := d.Run(context.Background()); err != nil {
		fmt.Fprintln(stderr, "stoad:", err)
		return 1
	}
	return 0
}

// NewLogger builds the daemon's structured logger.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
