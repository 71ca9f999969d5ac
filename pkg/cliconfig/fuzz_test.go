package cliconfig_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/cliconfig"
)

// FuzzLoad: Load never panics, and whatever it accepts survives a
// Save/Load round trip unchanged.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("current-context: prod\ncontexts:\n  - name: prod\n    server: https://cp.example.com:7443\n    issuer: https://idp.example.com\n"))
	f.Add([]byte("contexts:\n  - name: u\n    server: unix:///run/stoa.sock\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := cliconfig.Load(p)
		if err != nil {
			return
		}
		if err := c.Save(); err != nil {
			t.Fatalf("save accepted config: %v", err)
		}
		c2, err := cliconfig.Load(p)
		if err != nil {
			t.Fatalf("reload saved config: %v", err)
		}
		if c.CurrentContext != c2.CurrentContext || !reflect.DeepEqual(c.List(), c2.List()) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c.List(), c2.List())
		}
	})
}
