package daemon

import (
	"io"
	"strings"
	"testing"
)

// TestParseFlagsEnums: enum flags and their environment variables reject
// unknown values with the valid ones and a did-you-mean, instead of
// starting with a default nobody chose.
func TestParseFlagsEnums(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		args []string
		env  map[string]string
		err  string
	}{
		{args: []string{"--log-level", "loud"}, err: `--log-level "loud" (or STOAD_LOG_LEVEL): want debug, info, warn, error`},
		{args: []string{"--log-level", "debgu"}, err: `did you mean "debug"?`},
		{args: []string{"--log-level", "inf"}, err: `did you mean "info"?`},
		{env: map[string]string{"STOAD_LOG_LEVEL": "verbose"}, err: "--log-level \"verbose\""},
		{args: []string{"--log-format", "jsno"}, err: `did you mean "json"?`},
		{args: []string{"--log-format", "xml"}, err: "want text, json"},
		{args: []string{"--log-level", "WARN", "--log-format", "json"}},
		{},
	} {
		c, err := ParseFlags(tc.args, env(tc.env), io.Discard)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.args, err)
			} else if tc.args != nil && c.LogLevel != "warn" {
				t.Errorf("%v: level %q", tc.args, c.LogLevel)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v %v: error %v, want %q", tc.args, tc.env, err, tc.err)
		}
	}
}

func TestOneEdit(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"debgu", "debug", true}, {"jsno", "json", true}, {"inf", "info", true}, {"infoo", "info", true},
		{"ifno", "info", true}, {"eror", "error", true}, {"loud", "info", false}, {"x", "text", false},
	} {
		if got := oneEdit(tc.a, tc.b); got != tc.want {
			t.Errorf("oneEdit(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
