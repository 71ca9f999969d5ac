package controlplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/pgstore"
)

// pgDatabase creates a PostgreSQL database for the test with createdb
// (the local server, as the OS user, like pkg/store/pgstore's tests; or
// $STOA_TEST_POSTGRES_FLEET, a URL of a database to use as it is) and
// returns its URL. Without a server the test skips, except under CI=true.
func pgDatabase(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("STOA_TEST_POSTGRES_FLEET"); u != "" {
		return u
	}
	var b [6]byte
	rand.Read(b[:])
	name := "stoa_fleet_" + hex.EncodeToString(b[:])
	if out, err := exec.Command("createdb", name).CombinedOutput(); err != nil {
		msg := "PostgreSQL is not available for the replica tests (createdb: " + string(bytes.TrimSpace(out)) + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("dropdb", "--force", name).Run() })
	return "postgres:///" + name + "?host=/var/run/postgresql"
}

// Two control plane replicas on one PostgreSQL database share one CA,
// and a join token admits exactly one data plane whichever replica each
// join reaches.
func TestReplicasOnPostgreSQL(t *testing.T) {
	url := pgDatabase(t)
	ctx := context.Background()
	var stores []store.Store
	for range 2 {
		st, err := pgstore.Open(ctx, url, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
	}
	// Both replicas start at once.
	cas := make([]*ca.CA, 2)
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ca.FromStore(ctx, st, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			cas[i] = c
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if !cas[0].Certificate().Equal(cas[1].Certificate()) {
		t.Fatal("the replicas made two CAs")
	}

	var servers []*Server
	for i, st := range stores {
		srv, err := NewServer(Config{Store: st, CA: cas[i], Source: NewMemorySource(1), KeyID: "sha256:k", Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, srv)
	}
	tok, err := servers[0].Tokens().Create(ctx, CreateTokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _ := ca.NewKey()
			csr, _ := ca.NewCSR(k, "")
			body, _ := json.Marshal(fleet.JoinRequest{Token: tok.Token, Name: "edge-" + string(rune('a'+i)), CSR: string(csr), KeyID: "sha256:k"})
			rec := httptest.NewRecorder()
			servers[i%2].Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, fleet.PathJoin, bytes.NewReader(body)))
			codes[i] = rec.Code
		}()
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			won++
		case http.StatusUnauthorized, http.StatusServiceUnavailable:
		default:
			t.Errorf("join answered %d", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d joins won with one token across two replicas (%v)", won, codes)
	}
	// The other replica lists it (heartbeats in the store).
	l, err := servers[1].DataPlanes(ctx)
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("listing on the other replica: %+v %v", l, err)
	}
}
