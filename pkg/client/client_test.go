package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
)

func shortDir(t *testing.T) string {
	t.Helper()
	// Unix socket paths are limited to about 100 bytes: t.TempDir() can be
	// too long.
	dir, err := os.MkdirTemp("", "stoa-client")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestDialErrors: what is at the socket path decides the error and its
// hint; "start stoad" is offered only where stoad could put its socket.
func TestDialErrors(t *testing.T) {
	dir := shortDir(t)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("root:x:0:0\n"), 0o644)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	for _, tc := range []struct {
		name, path string
		wantErr    string
		wantHint   string
		noHint     string
		problem    SocketProblem
	}{
		{"missing", filepath.Join(dir, "none.sock"), "no such file", "start it with: stoad --socket " + filepath.Join(dir, "none.sock"), "", SocketMissing},
		{"stale socket", stale, "connection refused", "start it with: stoad --socket " + stale, "", SocketStale},
		{"regular file", file, "it is a regular file, not a socket", "--socket", "start it", SocketNotSocket},
		{"directory", dir, "it is a directory, not a socket", "--socket", "start it", SocketNotSocket},
		{"under a file", filepath.Join(file, "x.sock"), "not a directory", "--socket", "start it", SocketBadPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.path).Status(context.Background())
			var ue *UnreachableError
			if !errors.As(err, &ue) {
				t.Fatalf("error %T %v, want *UnreachableError", err, err)
			}
			if ue.Problem != tc.problem || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(ue.Hint(), tc.wantHint) ||
				(tc.noHint != "" && strings.Contains(ue.Hint(), tc.noHint)) {
				t.Fatalf("problem %d, error %q, hint %q", ue.Problem, err, ue.Hint())
			}
		})
	}
}

// TestDialPermissionDenied: a socket the user may not open is "not
// allowed", with its owner and mode — never "is stoad running?".
func TestDialPermissionDenied(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Chmod(sock, 0o600)

	// The classification, with the error connect(2) gives a user the
	// socket's mode shuts out (as root, the kernel never refuses).
	err = dialError(sock, syscall.EACCES)
	var fe *ForbiddenError
	if !errors.As(err, &fe) || fe.Owner == "" || !strings.Contains(fe.Mode, "rw-------") {
		t.Fatalf("dialError(EACCES) = %T %v", err, err)
	}
	if !strings.Contains(err.Error(), "not allowed to use this socket "+sock+" (owner ") || strings.Contains(fe.Hint(), "stoad --socket") ||
		!strings.Contains(fe.Hint(), "--socket-group") {
		t.Fatalf("error %q, hint %q", err, fe.Hint())
	}

	if os.Geteuid() == 0 {
		t.Skip("the connection itself is checked only without root: root may open any socket")
	}
	os.Chmod(sock, 0o000)
	_, err = New(sock).Status(context.Background())
	if !errors.As(err, &fe) {
		t.Fatalf("connect to a mode-000 socket: %T %v, want *ForbiddenError", err, err)
	}
}

// TestHTTPStatusWithoutEnvelope: an error answer without stoad's JSON
// envelope still maps to the right code (403 → forbidden, exit 4).
func TestHTTPStatusWithoutEnvelope(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	status := http.StatusForbidden
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "go away", status)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusForbidden, api.CodeForbidden},
		{http.StatusUnauthorized, api.CodeUnauthorized},
		{http.StatusServiceUnavailable, api.CodeUnavailable},
		{http.StatusTeapot, api.CodeInternal},
	} {
		status = tc.status
		_, err := New(sock).Status(context.Background())
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tc.code || !strings.Contains(ae.Message, "go away") {
			t.Errorf("HTTP %d: %v, want code %s", tc.status, err, tc.code)
		}
	}
}

// TestCheckSocketNamesItsFlags: stoad's other sockets get hints with their
// own flags.
func TestCheckSocketNamesItsFlags(t *testing.T) {
	dir := shortDir(t)
	missing := filepath.Join(dir, "m.sock")
	err := CheckSocket(missing, "--mcp-socket", "--mcp-socket or STOA_MCP_SOCKET")
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(ue.Hint(), "stoad --mcp-socket "+missing) || strings.Contains(ue.Hint(), "STOA_SOCKET") {
		t.Fatalf("%v, hint %q", err, ue.Hint())
	}
	ln, err := net.Listen("unix", missing)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := CheckSocket(missing, "--mcp-socket", ""); err != nil {
		t.Fatalf("listening socket: %v", err)
	}
}
