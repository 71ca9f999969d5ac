package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/stoa-gateway/stoa/pkg/store/pgstore/pgtest"
	"net/url"
	"os"
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
// admin connects to the admin database.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		pgtest.Unavailable(t, "PostgreSQL is not reachable (%v): install and start it (apt-get install postgresql; pg_ctlcluster 15 main start), "+
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
