package unixsock

import (
	"bytes"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sockDir returns a short directory for sockets (paths are limited to
// about 108 bytes; t.TempDir can be longer).
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "stoa-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// staleSocket leaves a socket file nobody listens on (as a killed stoad
// does).
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("stale socket not left behind: %v", err)
	}
}

func TestListenReplacesOnlyStaleSockets(t *testing.T) {
	dir := sockDir(t)
	path := filepath.Join(dir, "s.sock")

	t.Run("missing", func(t *testing.T) {
		ln, err := Listen(path, "", "--socket", nil)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != fs.ModeSocket {
			t.Fatalf("socket: %v %v", fi.Mode(), err)
		}
		ln.Close()
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Fatalf("socket left behind after Close: %v", err)
		}
	})

	t.Run("stale socket", func(t *testing.T) {
		staleSocket(t, path)
		ln, err := Listen(path, "", "--socket", nil)
		if err != nil {
			t.Fatalf("stale socket not replaced: %v", err)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("new socket does not accept: %v", err)
		}
		c.Close()
		ln.Close()
	})

	t.Run("live socket", func(t *testing.T) {
		live, err := Listen(path, "", "--socket", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		_, err = Listen(path, "", "--socket", nil)
		if err == nil || !strings.Contains(err.Error(), "another stoad is serving on "+path) {
			t.Fatalf("live socket: %v", err)
		}
		// The live one still serves.
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("the live socket was disturbed: %v", err)
		}
		c.Close()
	})

	other := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(other, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	liveTarget := filepath.Join(dir, "live.sock")
	live, err := net.Listen("unix", liveTarget)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	staleTarget := filepath.Join(dir, "stale.sock")
	staleSocket(t, staleTarget)

	for _, tc := range []struct {
		name, flag, what string
		make             func(p string) error
	}{
		{"regular file", "--socket", "a regular file", func(p string) error { return os.WriteFile(p, []byte("precious"), 0o600) }},
		{"empty file", "--mcp-socket", "a regular file", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{"symlink to a file", "--socket", "a symbolic link (to " + other + ")", func(p string) error { return os.Symlink(other, p) }},
		{"symlink to a stale socket", "--mcp-socket", "a symbolic link", func(p string) error { return os.Symlink(staleTarget, p) }},
		{"symlink to a live socket", "--socket", "a symbolic link", func(p string) error { return os.Symlink(liveTarget, p) }},
		{"dangling symlink", "--mcp-socket", "a symbolic link", func(p string) error { return os.Symlink(filepath.Join(dir, "nowhere"), p) }},
		{"directory", "--socket", "a directory", func(p string) error { return os.Mkdir(p, 0o700) }},
		{"named pipe", "--socket", "a named pipe", func(p string) error { return syscall.Mkfifo(p, 0o600) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "x.sock")
			os.RemoveAll(p)
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(p)
			_, err := Listen(p, "", tc.flag, nil)
			if err == nil {
				t.Fatal("Listen replaced something that is not a stale socket")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.flag+" "+p) || !strings.Contains(msg, tc.what) || !strings.Contains(msg, "not a socket") {
				t.Fatalf("error does not name the flag, path and what is there: %v", err)
			}
			after, err := os.Lstat(p)
			if err != nil || !os.SameFile(before, after) {
				t.Fatalf("%s was touched: %v", p, err)
			}
			if b, _ := os.ReadFile(other); string(b) != "precious" {
				t.Fatal("the symlink's target was touched")
			}
			if _, err := os.Lstat(staleTarget); err != nil {
				t.Fatal("the symlink's stale socket target was removed")
			}
		})
	}
}

// A socket whose path was taken over after start (by a second stoad that
// found ours stale, or by anyone) is not removed by our Close.
func TestCloseRemovesOnlyItsOwnFile(t *testing.T) {
	dir := sockDir(t)
	path := filepath.Join(dir, "s.sock")
	ln, err := Listen(path, "", "--socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("someone else's"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if b, err := os.ReadFile(path); err != nil || string(b) != "someone else's" {
		t.Fatalf("Close removed a file it did not create: %v", err)
	}
}

func TestListenWarnsAboutWritableDirectories(t *testing.T) {
	base := sockDir(t)
	for _, tc := range []struct {
		name string
		mode fs.FileMode
		warn bool
	}{
		{"private", 0o700, false},
		{"world-readable", 0o755, false},
		{"world-writable", 0o777, true},
		{"world-writable sticky (like /tmp)", 0o777 | fs.ModeSticky, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(base, strings.NewReplacer(" ", "", "(", "", ")", "", "/", "").Replace(tc.name))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			ln, err := Listen(filepath.Join(dir, "s.sock"), "", "--socket", log)
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
			warned := strings.Contains(buf.String(), "socket directory is unsafe")
			if warned != tc.warn {
				t.Fatalf("mode %v: warned %v, want %v:\n%s", tc.mode, warned, tc.warn, buf.String())
			}
			if warned && !strings.Contains(buf.String(), "no sticky bit") {
				t.Fatalf("warning does not say why:\n%s", buf.String())
			}
		})
	}
}
