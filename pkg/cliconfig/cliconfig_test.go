package cliconfig_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/cliconfig"
)

const fp = "SHA256:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func prod() cliconfig.Context {
	return cliconfig.Context{Name: "prod", Server: "https://cp.example.com:7443", Issuer: "https://idp.example.com/realms/acme",
		Audience: "https://cp.example.com", Fingerprint: strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(fp, "SHA256:"), ":", ""))}
}

func TestRoundTripAndOperations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stoa", "config.yaml")
	c, err := cliconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); len(got) != 1 || got[0] != "local" || c.Current() != "local" {
		t.Fatalf("empty config: %v current %s", got, c.Current())
	}
	if err := c.Add(prod()); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(prod()); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate Add: %v", err)
	}
	if err := c.Add(cliconfig.Context{Name: "other-daemon", Server: "unix:///run/stoa/other.sock"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Use("prod"); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode %v %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Fatalf("config dir mode %v", di.Mode())
	}
	data, _ := os.ReadFile(path)
	// local is not stored, and unset fields are omitted.
	if !strings.Contains(string(data), "current-context: prod") || strings.Contains(string(data), "name: local") || strings.Contains(string(data), "clientID") {
		t.Fatalf("saved:\n%s", data)
	}
	c2, err := cliconfig.Load(path)
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, data)
	}
	got, err := c2.Get("prod")
	if err != nil || got.Fingerprint != fp || got.Issuer != prod().Issuer {
		t.Fatalf("reloaded prod = %+v %v", got, err)
	}
	if c2.Current() != "prod" {
		t.Fatalf("current = %s", c2.Current())
	}
	other, _ := c2.Get("other-daemon")
	if !other.IsLocal() || other.SocketPath() != "/run/stoa/other.sock" || got.IsLocal() || !cliconfig.Local().IsLocal() {
		t.Error("IsLocal/SocketPath wrong")
	}
	if f, ok, err := got.ServerFingerprint(); !ok || err != nil || f.String() != fp {
		t.Errorf("ServerFingerprint = %v %v %v", f, ok, err)
	}
	// Set replaces in place.
	p2 := prod()
	p2.Audience = "changed"
	if created, err := c2.Set(p2); err != nil || created {
		t.Fatalf("Set existing = %v %v", created, err)
	}
	if g, _ := c2.Get("prod"); g.Audience != "changed" || c2.Names()[1] != "prod" {
		t.Errorf("Set did not replace in place: %v", c2.Names())
	}
	// Deleting the current context falls back to local.
	was, err := c2.Delete("prod")
	if err != nil || !was || c2.Current() != "local" {
		t.Fatalf("Delete current = %v %v, current %s", was, err, c2.Current())
	}
	if _, err := c2.Delete("prod"); !errors.Is(err, cliconfig.ErrNoContext) {
		t.Fatalf("Delete missing: %v", err)
	}
	if _, err := c2.Delete("local"); err == nil || !strings.Contains(err.Error(), "built in") {
		t.Fatalf("Delete local: %v", err)
	}
	if err := c2.Use("nope"); !errors.Is(err, cliconfig.ErrNoContext) || !strings.Contains(err.Error(), "local, other-daemon") {
		t.Fatalf("Use unknown: %v", err)
	}
	if err := c2.Use("local"); err != nil || c2.CurrentContext != "" {
		t.Fatalf("Use local: %v %q", err, c2.CurrentContext)
	}
	// No temporary files are left next to the config.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("config dir holds %d entries", len(ents))
	}
}

func TestResolvePrecedence(t *testing.T) {
	c, _ := cliconfig.Load(filepath.Join(t.TempDir(), "config.yaml"))
	for _, n := range []string{"a", "b", "c"} {
		if err := c.Add(cliconfig.Context{Name: n, Server: "https://" + n + ".example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		flag, envCtx, current string
		want                  string
		src                   cliconfig.Source
	}{
		{"a", "b", "c", "a", cliconfig.SourceFlag},
		{"", "b", "c", "b", cliconfig.SourceEnv},
		{"", "", "c", "c", cliconfig.SourceConfig},
		{"", "", "", "local", cliconfig.SourceDefault},
		{"local", "b", "c", "local", cliconfig.SourceFlag},
	}
	for _, tt := range tests {
		c.CurrentContext = tt.current
		sel, err := c.Resolve(tt.flag, env(map[string]string{cliconfig.EnvContext: tt.envCtx}))
		if err != nil || sel.Context.Name != tt.want || sel.Source != tt.src {
			t.Errorf("flag=%q env=%q current=%q: got %s from %s (%v), want %s from %s", tt.flag, tt.envCtx, tt.current, sel.Context.Name, sel.Source, err, tt.want, tt.src)
		}
	}
	_, err := c.Resolve("", env(map[string]string{cliconfig.EnvContext: "gone"}))
	if !errors.Is(err, cliconfig.ErrNoContext) || !strings.Contains(err.Error(), "$STOA_CONTEXT") {
		t.Fatalf("unknown env context: %v", err)
	}
	sel, err := c.Resolve("a", env(map[string]string{cliconfig.EnvToken: " tok123\n"}))
	if err != nil || sel.Token != "tok123" {
		t.Fatalf("STOA_TOKEN: %+v %v", sel, err)
	}
}

func TestContextValidation(t *testing.T) {
	ok := prod()
	tests := []struct {
		name  string
		edit  func(*cliconfig.Context)
		field string // "" = valid
	}{
		{"valid", func(*cliconfig.Context) {}, ""},
		{"loopback http", func(c *cliconfig.Context) { c.Server = "http://127.0.0.1:7080"; c.Fingerprint = "" }, ""},
		{"dev issuer on loopback http", func(c *cliconfig.Context) { c.Issuer = "http://127.0.0.1:5556" }, ""},
		{"unix socket", func(c *cliconfig.Context) { *c = cliconfig.Context{Name: "u", Server: "unix:///tmp/s.sock"} }, ""},
		{"local name", func(c *cliconfig.Context) { c.Name = "local" }, "name"},
		{"bad name", func(c *cliconfig.Context) { c.Name = "../x" }, "name"},
		{"empty name", func(c *cliconfig.Context) { c.Name = "" }, "name"},
		{"no server", func(c *cliconfig.Context) { c.Server = "" }, "server"},
		{"plain http remote", func(c *cliconfig.Context) { c.Server = "http://cp.example.com" }, "server"},
		{"ftp", func(c *cliconfig.Context) { c.Server = "ftp://cp.example.com" }, "server"},
		{"credentials in url", func(c *cliconfig.Context) { c.Server = "https://u:p@cp.example.com" }, "server"},
		{"relative unix", func(c *cliconfig.Context) { *c = cliconfig.Context{Name: "u", Server: "unix://rel.sock"} }, "server"},
		{"unix with issuer", func(c *cliconfig.Context) { c.Server = "unix:///tmp/s.sock"; c.Fingerprint = "" }, "server"},
		{"http issuer", func(c *cliconfig.Context) { c.Issuer = "http://idp.example.com" }, "issuer"},
		{"issuer with query", func(c *cliconfig.Context) { c.Issuer = "https://idp.example.com?x=1" }, "issuer"},
		{"login settings without issuer", func(c *cliconfig.Context) { c.Issuer = "" }, "issuer"},
		{"bad fingerprint", func(c *cliconfig.Context) { c.Fingerprint = "abc" }, "fingerprint"},
		{"fingerprint on http", func(c *cliconfig.Context) { c.Server = "http://127.0.0.1:1" }, "fingerprint"},
		{"issuer fingerprint on http issuer", func(c *cliconfig.Context) { c.Issuer = "http://127.0.0.1:5556"; c.IssuerFingerprint = fp }, "issuerFingerprint"},
		{"bad client id", func(c *cliconfig.Context) { c.ClientID = "a b" }, "clientID"},
		{"bad scope", func(c *cliconfig.Context) { c.Scopes = []string{`a"b`} }, "scopes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			_, err := c.Normalize()
			var fe *cliconfig.FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Normalize: %v", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Fatalf("Normalize: %v, want an error on %s", err, tt.field)
			}
		})
	}
}

func TestLoadErrorsPointAtTheProblem(t *testing.T) {
	tests := []struct {
		name, yaml, want string
		line             int
	}{
		{"unknown field", "contexts:\n  - name: prod\n    server: https://cp.example.com\n    sever: typo\n", "unknown field", 4},
		{"bad server", "contexts:\n  - name: prod\n    server: http://cp.example.com\n", "plain http", 3},
		{"duplicate", "contexts:\n  - name: a\n    server: https://a.example.com\n  - name: a\n    server: https://b.example.com\n", "also the name of context 1", 4},
		{"dangling current", "current-context: gone\ncontexts:\n  - name: a\n    server: https://a.example.com\n", "names no context", 1},
		{"syntax", "contexts: [\n", "", 0},
		{"wrong type", "contexts: yes\n", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := cliconfig.Load(path)
			var fe *cliconfig.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("Load: %v, want a *FileError", err)
			}
			if !strings.Contains(err.Error(), tt.want) || (tt.line > 0 && fe.Line != tt.line) || !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("Load error (line %d):\n%v\nwant %q at line %d", fe.Line, err, tt.want, tt.line)
			}
			if fe.Line > 0 && !strings.Contains(err.Error(), fe.Source) {
				t.Errorf("the error does not show the line:\n%v", err)
			}
		})
	}
}

func TestLoadEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"", "\n  \n", "# just a comment\n"} {
		p := filepath.Join(dir, "c.yaml")
		_ = os.WriteFile(p, []byte(content), 0o600)
		c, err := cliconfig.Load(p)
		if err != nil || len(c.Contexts) != 0 {
			t.Errorf("Load(%q) = %v", content, err)
		}
	}
	if c, err := cliconfig.Load(filepath.Join(dir, "missing", "config.yaml")); err != nil || c.Current() != "local" {
		t.Fatalf("missing file: %v", err)
	}
}

func TestPaths(t *testing.T) {
	d, err := cliconfig.Dir(env(map[string]string{"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/home/u"}))
	if err != nil || d != "/x/cfg/stoa" {
		t.Errorf("Dir with XDG = %q %v", d, err)
	}
	d, err = cliconfig.Dir(env(map[string]string{"HOME": "/home/u"}))
	if err != nil || d != "/home/u/.config/stoa" {
		t.Errorf("Dir without XDG = %q %v", d, err)
	}
	if _, err := cliconfig.Dir(env(map[string]string{"XDG_CONFIG_HOME": "relative"})); err == nil {
		t.Error("a relative XDG_CONFIG_HOME was accepted")
	}
	p, err := cliconfig.DefaultPath(env(map[string]string{cliconfig.EnvConfig: "/etc/stoa.yaml", "HOME": "/home/u"}))
	if err != nil || p != "/etc/stoa.yaml" {
		t.Errorf("DefaultPath with STOA_CONFIG = %q %v", p, err)
	}
	p, _ = cliconfig.DefaultPath(env(map[string]string{"HOME": "/home/u"}))
	if p != "/home/u/.config/stoa/config.yaml" {
		t.Errorf("DefaultPath = %q", p)
	}
}
