package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/bundle"
)

// newFleetControlPlane builds (without running) a control plane with
// --bundle-signing-key keyFile on an embedded store.
func newFleetControlPlane(t *testing.T, keyFile string) (*Daemon, error) {
	t.Helper()
	cfg := &Config{Role: RoleControlPlane, StateDir: filepath.Join(t.TempDir(), "state"), Socket: filepath.Join(sockDir(t), "s.sock"),
		APIListen: "127.0.0.1:0", DevIssuer: true, BundleSigningKey: keyFile}
	d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Runtimes: ControlPlaneRuntimes})
	if err == nil {
		t.Cleanup(func() { d.cp.ln.Close(); d.store.Close() })
	}
	return d, err
}

// TestControlPlaneBundleSigningKey: the key is loaded at start with its
// password from $COSIGN_PASSWORD; a wrong password or a missing file
// stops the start with the flag, the file and where the password comes
// from named; with the key, the fleet routes' TLS asks for client
// certificates without requiring them and the fleet is a component.
func TestControlPlaneBundleSigningKey(t *testing.T) {
	priv, _, err := bundle.GenerateKeyPair([]byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(key, priv, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Setenv("COSIGN_PASSWORD", "wrong")
	if _, err := newFleetControlPlane(t, key); err == nil || !strings.Contains(err.Error(), "--bundle-signing-key "+key) ||
		!strings.Contains(err.Error(), "$COSIGN_PASSWORD") {
		t.Fatalf("a wrong password: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope.key")
	if _, err := newFleetControlPlane(t, missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a missing key: %v", err)
	}

	t.Setenv("COSIGN_PASSWORD", "right")
	d, err := newFleetControlPlane(t, key)
	if err != nil {
		t.Fatal(err)
	}
	if d.cp.fleet == nil || d.services.Fleet == nil {
		t.Fatal("the fleet is not wired")
	}
	if ca := d.cp.tls.ClientAuth.String(); ca != "VerifyClientCertIfGiven" || d.cp.tls.ClientCAs == nil {
		t.Fatalf("API listener client auth %s: want VerifyClientCertIfGiven with the fleet CA", ca)
	}
	var found bool
	for _, c := range d.Status().Components {
		if c.Name == "fleet" {
			found = strings.Contains(c.Detail, "no revision published yet")
		}
	}
	if !found {
		t.Fatalf("status components: %+v", d.Status().Components)
	}
	// No data planes yet, and join tokens are made.
	l, err := d.cp.fleet.DataPlanes(context.Background())
	if err != nil || len(l.Items) != 0 {
		t.Fatalf("data planes: %+v %v", l, err)
	}
	tok, err := d.cp.fleet.CreateJoinToken(context.Background(), "edge-1", 0, "test")
	if err != nil || !strings.HasPrefix(tok.Token, "stoajoin_") || tok.Name != "edge-1" {
		t.Fatalf("join token: %+v %v", tok, err)
	}
}
