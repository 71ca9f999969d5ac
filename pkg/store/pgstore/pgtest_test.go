package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The tests run against a real PostgreSQL: by default the local server's
// unix socket, as the OS user's own role (peer authentication, no
// password: .ci/run creates the role; a developer runs
// `runuser -u postgres -- createuser --superuser $USER` once).
// STOA_TEST_POSTGRES names another admin URL. Each test gets a database
// of its own, created with a random name and dropped afterwards. Without
// a server the tests skip, except under CI=true, where they fail.
const defaultAdminURL = "postgres:///postgres?host=/var/run/postgresql"

var ctx = context.Background()

func adminURL() string {
	if u := os.Getenv("STOA_TEST_POSTGRES"); u != "" {
		return u
	}
	return defaultAdminURL
}

// unavailable skips the test, or fails it under CI=true, where every
// prerequisite must be there.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: .ci/run installs and starts PostgreSQL)")
	}
	t.Skip(msg)
}

// admin connects to the admin database.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		unavailable(t, "PostgreSQL is not reachable (%v): install and start it (apt-get install postgresql; pg_ctlcluster 15 main start), "+
			"create a role for your OS user (runuser -u postgres -- createuser --superuser $USER), or set STOA_TEST_POSTGRES to an admin URL", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// withDatabase returns url pointing at database db instead.
func withDatabase(t testing.TB, u, db string) string {
	t.Helper()
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatalf("STOA_TEST_POSTGRES: %v", err)
		}
		pu.Path = "/" + db
		return pu.String()
	}
	return u + " dbname=" + db // key=value form: the last one wins
}

// freshDB creates an empty database and returns its URL; it is dropped
// when the test ends (after the test's own cleanups, which close stores).
func freshDB(t testing.TB) string {
	t.Helper()
	conn := admin(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "stoa_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return withDatabase(t, adminURL(), name)
}

// open opens a store on url, closed when the test ends.
func open(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// server is a PostgreSQL server of the test's own, which it may stop and
// start (the shared one is left alone).
type server struct {
	t    testing.TB
	bin  string
	dir  string
	url  string
	user string // the OS user it runs as ("" when it is this process's)
}

// privateServer initialises and starts a server in a directory of its
// own, listening only on a unix socket there. PostgreSQL refuses to run
// as root: as root, it runs as the postgres user.
func privateServer(t testing.TB) *server {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		unavailable(t, "PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql")
	}
	// Not t.TempDir: the postgres user must reach it, and t.TempDir's
	// parent is private to this user.
	dir, err := os.MkdirTemp("", "stoa-pg-")
	if err != nil {
		t.Fatal(err)
	}
	srv := &server{t: t, bin: bin, dir: dir}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "running as root, and there is no postgres user to run a server as")
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
	srv.start()
	t.Cleanup(func() { srv.run("pg_ctl", "-D", srv.data(), "-m", "immediate", "-w", "stop") })
	srv.url = fmt.Sprintf("postgres:///postgres?host=%s&user=postgres", dir)
	return srv
}

func (s *server) data() string { return filepath.Join(s.dir, "data") }

func (s *server) start() {
	s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-w", "-t", "120",
		"-o", fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c shared_buffers=16MB", s.dir), "start")
}

// stop is a fast shutdown: the server ends every session (57P01) and
// stops listening.
func (s *server) stop() { s.run("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "-t", "120", "stop") }

func (s *server) run(prog string, args ...string) {
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
