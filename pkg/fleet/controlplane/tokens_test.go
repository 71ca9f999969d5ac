package controlplane

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/store/boltstore"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openStore(t testing.TB) store.Store {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func apiCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	toks := NewTokens(openStore(t), clk.Now)

	for _, o := range []CreateTokenOptions{{Name: "Edge_1"}, {TTL: time.Second}, {TTL: 8 * 24 * time.Hour}} {
		if _, err := toks.Create(ctx, o); apiCode(err) != api.CodeInvalid {
			t.Errorf("create %+v: %v", o, err)
		}
	}
	a, err := toks.Create(ctx, CreateTokenOptions{Name: "edge-1", CreatedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Token, TokenPrefix) || len(a.Token) != len(TokenPrefix)+43 || a.ExpiresAt.Sub(a.CreatedAt) != DefaultTokenTTL || a.State != fleet.TokenActive || len(a.ID) != 12 {
		t.Fatalf("token: %+v", a)
	}
	clk.Advance(time.Minute)
	b, err := toks.Create(ctx, CreateTokenOptions{TTL: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	list, err := toks.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID || list[1].CreatedBy != "alice" || list[1].Name != "edge-1" {
		t.Fatalf("list: %+v %v", list, err)
	}
	for _, l := range list {
		if strings.Contains(l.ID, a.Token) || l.ID == "" {
			t.Fatal("listing shows the secret")
		}
	}
	// The secret is stored only hashed.
	var stored []string
	toks.st.View(ctx, func(tx store.Tx) error {
		return tx.Meta().List(ctx, store.MetaFleet, func(k string, v []byte) error {
			stored = append(stored, k+string(v))
			return nil
		})
	})
	for _, s := range stored {
		if strings.Contains(s, a.Token[len(TokenPrefix):]) {
			t.Fatal("the token's secret is stored")
		}
	}

	if err := toks.Revoke(ctx, "abc"); apiCode(err) != api.CodeInvalid {
		t.Fatalf("revoke a short id: %v", err)
	}
	if err := toks.Revoke(ctx, "ffffffffffff"); apiCode(err) != api.CodeNotFound && a.ID != "ffffffffffff" {
		t.Fatalf("revoke an unknown id: %v", err)
	}
	if err := toks.Revoke(ctx, strings.ToUpper(b.ID[:8])); err != nil {
		t.Fatalf("revoke by prefix: %v", err)
	}
	if list, _ := toks.List(ctx); len(list) != 1 || list[0].ID != a.ID {
		t.Fatalf("after revoke: %+v", list)
	}
	// Expired tokens are listed as such for a day, then dropped.
	clk.Advance(2 * time.Hour)
	if list, _ := toks.List(ctx); list[0].State != fleet.TokenExpired {
		t.Fatalf("state %q", list[0].State)
	}
	clk.Advance(25 * time.Hour)
	if _, err := toks.Create(ctx, CreateTokenOptions{}); err != nil {
		t.Fatal(err)
	}
	if list, _ := toks.List(ctx); len(list) != 1 || list[0].ID == a.ID {
		t.Fatalf("expired token kept: %+v", list)
	}
}
