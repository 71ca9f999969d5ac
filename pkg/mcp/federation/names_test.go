package federation

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

func TestExposedName(t *testing.T) {
	long := strings.Repeat("x", 70)
	for _, tc := range []struct {
		up      string
		rename  map[string]string
		want    string
		problem string
	}{
		{"search", nil, "acme__gh__search", ""},
		{"create_issue", map[string]string{"create_issue": "new_issue"}, "acme__gh__new_issue", ""},
		{"files.read", nil, "acme__gh__files_read", `tools.rename: {"files.read": "files_read"}`},
		{"a b/c", nil, "acme__gh__a_b_c", `{"a b/c": "a_b_c"}`},
		{"héllo", nil, "acme__gh__h_llo", "contains characters"},
		{long, nil, "acme__gh__" + strings.Repeat("x", 45) + "_", "would make the tool name 80 characters long"},
		{"日本", nil, "acme__gh___", "contains characters"},
	} {
		name, problem := ExposedName("acme", "gh", tc.up, tc.rename)
		if !strings.HasPrefix(name, tc.want) || !validName(name) {
			t.Errorf("ExposedName(%q) = %q; want prefix %q and a valid name", tc.up, name, tc.want)
		}
		if tc.problem == "" && problem != "" || tc.problem != "" && !strings.Contains(problem, tc.problem) {
			t.Errorf("ExposedName(%q) problem = %q; want %q", tc.up, problem, tc.problem)
		}
		again, _ := ExposedName("acme", "gh", tc.up, tc.rename)
		if again != name {
			t.Errorf("not deterministic: %q vs %q", name, again)
		}
	}
	a, _ := ExposedName("acme", "gh", long+"a", nil)
	b, _ := ExposedName("acme", "gh", long+"b", nil)
	if a == b || len(a) != spec.MaxMCPNameLen {
		t.Errorf("cut names collide or are not %d long: %q %q", spec.MaxMCPNameLen, a, b)
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		ok   bool
	}{
		{"*", "anything/at.all", true},
		{"get_*", "get_user", true},
		{"get_*", "list_users", false},
		{"*_admin", "delete_admin", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*a*b*", "xxaxxbxx", true},
		{"*a*b*", "xxbxxaxx", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
		{"files/*", "files/read", true},
	} {
		if got := globMatch(tc.p, tc.s); got != tc.ok {
			t.Errorf("globMatch(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
	f := Filter{Allow: []string{"get_*", "list_*"}, Deny: []string{"*_secret"}}
	for s, want := range map[string]bool{"get_user": true, "get_secret": false, "delete_user": false, "list_x": true} {
		if f.Admits(s) != want {
			t.Errorf("Admits(%q) = %v", s, !want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Tenant: "acme", Tool: "gh", Transport: TransportHTTP, URL: "https://mcp.example.com/mcp"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"no transport", func(c *Config) { c.Transport = "" }, []string{"spec.mcp.transport: missing transport"}},
		{"bad url", func(c *Config) { c.URL = "ftp://x" }, []string{"spec.mcp.url", "not an absolute http(s) URL"}},
		{"userinfo", func(c *Config) { c.URL = "https://u:p@x/mcp" }, []string{"credentials must not be part of the URL"}},
		{"stdio fields on http", func(c *Config) { c.Command = []string{"x"} }, []string{"spec.mcp.command", "stdio only"}},
		{"stdio without command", func(c *Config) { c.Transport, c.URL = TransportStdio, "" }, []string{"missing command"}},
		{"stdio auth", func(c *Config) {
			c.Transport, c.URL, c.Command = TransportStdio, "", []string{"x"}
			c.Auth = &Auth{SecretRef: spec.SecretRef{Env: "X"}}
		}, []string{"spec.mcp.upstreamAuth", "through env with a secretRef"}},
		{"env", func(c *Config) {
			c.Transport, c.URL, c.Command = TransportStdio, "", []string{"x"}
			c.Env = []EnvVar{{Name: "A=B"}, {Name: "X", Value: "1"}, {Name: "X", Value: "2"}}
		}, []string{"spec.mcp.env[0]", "spec.mcp.env[2]: variable X is set twice"}},
		{"version", func(c *Config) { c.ProtocolVersion = "2024-01-01" }, []string{"unsupported protocol version"}},
		{"auth header", func(c *Config) { c.Auth = &Auth{Header: "Bad Header", SecretRef: spec.SecretRef{Env: "X"}} }, []string{"spec.mcp.upstreamAuth.header"}},
		{"auth reserved header", func(c *Config) { c.Auth = &Auth{Header: "Mcp-Session-Id", SecretRef: spec.SecretRef{Env: "X"}} }, []string{"set by the transport"}},
		{"auth secret", func(c *Config) { c.Auth = &Auth{} }, []string{"spec.mcp.upstreamAuth.secretRef: set exactly one"}},
		{"rename invalid", func(c *Config) { c.Tools.Rename = map[string]string{"a": "b.c"} }, []string{"spec.mcp.tools.rename.a", "not a valid tool name"}},
		{"rename too long", func(c *Config) { c.Tools.Rename = map[string]string{"a": strings.Repeat("y", 60)} }, []string{"use at most 54 such characters"}},
		{"rename collision", func(c *Config) { c.Tools.Rename = map[string]string{"a": "z", "b": "z"} }, []string{`"a" and "b" are both renamed to "z"`}},
		{"rename hidden", func(c *Config) {
			c.Tools.Deny = []string{"a"}
			c.Tools.Rename = map[string]string{"a": "z"}
		}, []string{"hidden by tools.allow/deny"}},
		{"empty pattern", func(c *Config) { c.Tools.Allow = []string{""} }, []string{"spec.mcp.tools.allow[0]: empty pattern"}},
		{"long names", func(c *Config) { c.Tool = strings.Repeat("t", 60) }, []string{"leave no room"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSSEReader(t *testing.T) {
	in := ": comment\r\nevent: message\r\nid: 1\r\ndata: {\"a\":\r\ndata:1}\r\n\r\nretry: 10\n\ndata: second\n\ndata: last-without-blank"
	r := newSSEReader(strings.NewReader(in), 1<<10)
	var got []string
	for {
		d, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(d))
	}
	want := []string{"{\"a\":\n1}", "second", "last-without-blank"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events = %q; want %q", got, want)
	}
	r = newSSEReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50)
	if _, err := r.next(); err != errEventTooLarge {
		t.Errorf("over-long event: %v", err)
	}
}

func TestParamHeaders(t *testing.T) {
	schema := []byte(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},
		"opts":{"type":"object","properties":{"n":{"type":"integer","x-mcp-header":"N"}}},"flag":{"type":"boolean","x-mcp-header":"Flag"}}}`)
	b := paramBindings(schema)
	if len(b) != 3 {
		t.Fatalf("bindings = %+v", b)
	}
	hs := paramHeaderValues(b, []byte(`{"region":"eu wést","opts":{"n":7},"flag":true}`))
	got := map[string]string{}
	for _, h := range hs {
		got[h.name] = h.value
	}
	if got["Mcp-Param-Region"] != "=?base64?ZXUgd8Opc3Q=?=" || got["Mcp-Param-N"] != "7" || got["Mcp-Param-Flag"] != "true" {
		t.Errorf("headers = %v", got)
	}
	if paramBindings([]byte(`{"type":"object"}`)) != nil {
		t.Error("bindings without annotations")
	}
}

func TestRewriteResourceURIs(t *testing.T) {
	out, err := rewriteResourceURIs([]byte(`{"contents":[{"uri":"file:///a","text":"x"},{"uri":"p:/b","blob":"AA=="}],"_meta":{"k":1}}`), "stoa://tools/t/x/upstream/")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"uri":"stoa://tools/t/x/upstream/file:///a"`, `"uri":"stoa://tools/t/x/upstream/p:/b"`, `"_meta":{"k":1}`, `"blob":"AA=="`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
}
