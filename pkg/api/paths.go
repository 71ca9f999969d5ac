package api

import (
	"fmt"
	"os"
	"path/filepath"
)

// Default locations. Root uses system directories; everyone else uses the
// XDG base directories, so stoad runs without privileges.
const (
	SystemStateDir  = "/var/lib/stoa"
	SystemSocket    = "/run/stoa/stoad.sock"
	SystemMCPSocket = "/run/stoa/mcp.sock"
	SocketEnv       = "STOA_SOCKET"
)

// DefaultStateDir is where stoad keeps its database by default.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return SystemStateDir
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "stoa")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "stoa")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("stoa-%d", os.Getuid()), "state")
}

// runtimeDir is the directory for sockets of a non-root user.
func runtimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "stoa")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("stoa-%d", os.Getuid()))
}

// DefaultSocket is the LocalAPI socket stoad listens on and stoa dials when
// neither --socket nor STOA_SOCKET says otherwise.
func DefaultSocket() string {
	if os.Geteuid() == 0 {
		return SystemSocket
	}
	return filepath.Join(runtimeDir(), "stoad.sock")
}

// DefaultMCPSocket is the MCP unix socket next to the LocalAPI socket.
func DefaultMCPSocket() string {
	if os.Geteuid() == 0 {
		return SystemMCPSocket
	}
	return filepath.Join(runtimeDir(), "mcp.sock")
}
