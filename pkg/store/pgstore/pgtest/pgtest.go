// Package pgtest gives tests a PostgreSQL server of their own, which they
// may stop and start (an outage) without touching the shared one, and the
// rule for when PostgreSQL is missing: skip with a message on a developer
// machine, fail under CI=true. Used by pkg/store/pgstore's tests and the
// end-to-end tests of the control plane.
package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Unavailable skips the test for a missing PostgreSQL, or fails it under
// CI=true, where .ci/run installs and starts one.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: .ci/run installs and starts PostgreSQL)")
	}
	t.Skip(msg)
}

// Server is a PostgreSQL server of the test's own, which it may stop and
// start (the shared one is left alone).
type Server struct {
	t   testing.TB
	bin string
	dir string
	// URL reaches its postgres database as the postgres role.
	URL  string
	user string // the OS user it runs as ("" when it is this process's)
}

// Private initialises and starts a server in a directory of its
// own, listening only on a unix socket there. PostgreSQL refuses to run
// as root: as root, it runs as the postgres user.
func Private(t testing.TB) *Server {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		Unavailable(t, "PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql")
	}
	// Not t.TempDir: the postgres user must reach it, and t.TempDir's
	// parent is private to this user.
	dir, err := os.MkdirTemp("", "stoa-pg-")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{t: t, bin: bin, dir: dir}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Unavailable(t, "running as root, and there is no postgres user to run a server as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		srv.user = "postgres"
	}
	srv.run("initdb", "-D", srv.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	srv.Start()
	t.Cleanup(func() { srv.run("pg_ctl", "-D", srv.data(), "-m", "immediate", "-w", "stop") })
	srv.URL = fmt.Sprintf("postgres:///postgres?host=%s&user=postgres", dir)
	return srv
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// Start starts the server and waits until it accepts connections.
func (s *Server) Start() {
	s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-w", "-t", "120",
		"-o", fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c shared_buffers=16MB", s.dir), "start")
}

// Stop is a fast shutdown: the server ends every session (57P01) and
// stops listening.
func (s *Server) Stop() { s.run("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "-t", "120", "stop") }

func (s *Server) run(prog string, args ...string) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	if s.user != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.user, "--", cmd.Path}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.t.Fatalf("%s: %v\n%s\nserver log:\n%s", prog, err, out, log)
	}
}

// postgresBin is the directory of the newest installed server programs.
func postgresBin() string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	return ""
}
