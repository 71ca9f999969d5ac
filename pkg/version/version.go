// Package version carries the build's version, commit and date, injected
// at link time:
//
//	go build -ldflags "-X github.com/stoa-gateway/stoa/pkg/version.Version=v0.1.0 ..."
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags -X at build time.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

func init() {
	if Commit != "" {
		return
	}
	// Fall back to the VCS stamp the go command records.
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				Commit = s.Value
				if len(Commit) > 12 {
					Commit = Commit[:12]
				}
			case "vcs.time":
				if Date == "" {
					Date = s.Value
				}
			}
		}
	}
}

// String is the one-line version shown by `stoa version` and `stoad --version`.
func String(prog string) string {
	s := fmt.Sprintf("%s %s", prog, Version)
	if Commit != "" {
		s += " (" + Commit
		if Date != "" {
			s += ", " + Date
		}
		s += ")"
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
