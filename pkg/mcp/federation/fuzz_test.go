package federation

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// FuzzSSEReader: the event-stream parser never panics, never returns more
// than its limit, and returns data that was in the input.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\"}\n\n"))
	f.Add([]byte(": c\r\ndata:a\r\ndata: b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newSSEReader(bytes.NewReader(in), 256)
		for range 1000 {
			d, err := r.next()
			if err != nil {
				return
			}
			if len(d) > 256+1 {
				t.Fatalf("event of %d bytes over the limit", len(d))
			}
			for _, line := range bytes.Split(d, []byte("\n")) {
				if !bytes.Contains(in, line) {
					t.Fatalf("data %q not in the input", line)
				}
			}
		}
	})
}

// FuzzExposedName: any upstream name (and rename) gives a valid,
// deterministic tool name with the Tool's prefix; a problem is reported
// exactly when the name was not used as is.
func FuzzExposedName(f *testing.F) {
	f.Add("search", "")
	f.Add("files.read", "")
	f.Add(strings.Repeat("x", 80), "")
	f.Add("a", "renamed")
	f.Fuzz(func(t *testing.T, up, rename string) {
		var rn map[string]string
		if rename != "" {
			rn = map[string]string{up: rename}
		}
		name, problem := ExposedName("acme", "gh", up, rn)
		if !validName(name) || !strings.HasPrefix(name, "acme__gh__") || len(name) > spec.MaxMCPNameLen {
			t.Fatalf("ExposedName(%q, %q) = %q", up, rename, name)
		}
		last := up
		if rename != "" {
			last = rename
		}
		if (problem == "") != (name == "acme__gh__"+last) {
			t.Fatalf("ExposedName(%q, %q) = %q with problem %q", up, rename, name, problem)
		}
		if again, _ := ExposedName("acme", "gh", up, rn); again != name {
			t.Fatal("not deterministic")
		}
	})
}

// FuzzGlob: matching never panics, and a pattern without wildcards
// matches exactly itself.
func FuzzGlob(f *testing.F) {
	f.Add("get_*", "get_user")
	f.Add("*a?b*", "xaxbx")
	f.Fuzz(func(t *testing.T, p, s string) {
		m := globMatch(p, s)
		if !strings.ContainsAny(p, "*?") && m != (p == s) {
			t.Fatalf("globMatch(%q, %q) = %v", p, s, m)
		}
		if !globMatch("*", s) {
			t.Fatal("* must match everything")
		}
	})
}
