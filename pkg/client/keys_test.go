package client

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// TestKeysRoutes: the typed key calls send the LocalAPI's routes, queries
// and bodies, and decode its answers.
func TestKeysRoutes(t *testing.T) {
	sock := filepath.Join(shortDir(t), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet:
			json.NewEncoder(w).Encode(api.KeyList{Items: []api.KeyInfo{{ID: "k1"}}})
		case r.URL.Path == api.PathKeys:
			json.NewEncoder(w).Encode(api.KeyCreateResponse{Key: "stoa_sk_x", Info: api.KeyInfo{ID: "k2"}})
		case r.URL.Path == api.PathKeys+"/k%2F1/revoke" || r.URL.Path == api.PathKeys+"/k/1/revoke":
			json.NewEncoder(w).Encode(api.KeyInfo{ID: "k/1", State: "revoked"})
		default:
			json.NewEncoder(w).Encode(api.KeyRotateResponse{Key: "stoa_sk_y", New: api.KeyInfo{ID: "k3"}})
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	c := New(sock)
	ctx := context.Background()
	if c.Endpoint() != sock {
		t.Errorf("Endpoint() = %q, want the socket path", c.Endpoint())
	}
	if l, err := c.Keys(ctx, KeysOptions{}); err != nil || len(l.Items) != 1 {
		t.Fatalf("Keys: %v %+v", err, l)
	}
	if _, err := c.Keys(ctx, KeysOptions{Namespace: "acme", Consumer: "web shop"}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.CreateKey(ctx, &api.KeyCreateRequest{Tenant: "acme", Consumer: "web-shop", ExpiresIn: "90d"}); err != nil || r.Key != "stoa_sk_x" {
		t.Fatalf("CreateKey: %v %+v", err, r)
	}
	if k, err := c.RevokeKey(ctx, "k/1"); err != nil || k.State != "revoked" {
		t.Fatalf("RevokeKey: %v %+v", err, k)
	}
	if r, err := c.RotateKey(ctx, "k3", &api.KeyRotateRequest{Grace: "24h"}); err != nil || r.New.ID != "k3" {
		t.Fatalf("RotateKey: %v %+v", err, r)
	}
	want := []string{
		"GET /v1/keys ",
		"GET /v1/keys?consumer=web+shop&namespace=acme ",
		`POST /v1/keys {"tenant":"acme","consumer":"web-shop","expiresIn":"90d"}`,
		"POST /v1/keys/k%2F1/revoke {}",
		`POST /v1/keys/k3/rotate {"grace":"24h"}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("requests:\n%q\nwant:\n%q", got, want)
	}
}
