package yamlenc_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/stoa-gateway/stoa/pkg/yamlenc"
)

// specialStrings are strings a careless YAML writer gets wrong: each is
// tried as a document, a value, a key and a sequence item.
var specialStrings = []string{
	"", " ", "  ", "plain", "two words", " lead", "trail ", " both ",
	"a: b", "a:b", "a:", ":", ":a", "a #b", "a#b", "#", "# c", "a #",
	"-", "--", "---", "--- x", "-a", "- a", "-1", "-.5", "-.inf", "- ",
	"?", "?a", "? a", "!", "!tag", "&a", "*a", "{", "{}", "{a: 1}", "[", "[]", "[a]",
	"]", "}", ",", "a, b", "a,b", "|", "|-", ">", ">-", "%", "%YAML 1.2", "@a", "`a`",
	"'", "'a'", "\"", "\"a\"", "a\"b", "a'b", "\\", "\\n", "\\x41", "a\\", "...", "... x", "=", "<<",
	"~", "null", "Null", "NULL", "nULL", "true", "True", "TRUE", "false", "False",
	"yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
	"y", "Y", "n", "N", "nan", "NaN", "inf", "Infinity",
	"0", "1", "-0", "+1", "012", "0o17", "0O17", "0x10", "0X1f", "0b101", "+0b1", "1_000", "1__0",
	"_0", "+_0", "-__1", "0_", "._5", "+_.5", "0x_1", "_", "+_", "._", "_e1",
	"1e3", "1E3", "1e+3", "1.5", "1.", ".5", "1.2.3", "127.0.0.1", "127.0.0.1:9001",
	".inf", ".Inf", ".INF", "+.inf", "-.Inf", ".nan", ".NaN", ".NAN", "1:20", "190:20:30.15", "1:2:3",
	"2001-12-14", "2001-1-4", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
	"2001-12-14T21:59:43Z", "20011214", "4xx", "0xZZ", "0x", "0b12", "0o8", "_0x1", "0_x0", "0_b_1", "1_._5", "+-1", "+-.5", "-+1", "--1", "1st", "1e", "e1", "10:30", "1s", "20s", "100/s", "1.5MB", "1d", "v1.2.3",
	"http://127.0.0.1:9001/api", "/items/{id}", "^[a-z0-9-]+$", "a\tb", "\t", "tab\t",
	"line\nbreak", "\n", "trailing\n", "\r", "a\r\nb", "\r\n", "a\vb\fc", "\x00", "a\x00b",
	"\x01\x02\x1b\x7f", "\a\b", "é", "naïve café", "日本語", "emoji 😀", "👨‍👩‍👧", "\u0085", "a\u0085b",
	"\u2028", "a\u2028b\u2029c", "\ufeff", "\ufeffbom", "a\ufeff", "\u00a0", "a\u00a0", "\u00a0a",
	"\u3000", "a\u3000b", "\u200b", "\u202eevil", "\u0080\u009f", "\ufffd", "\uffff", "\ufffe",
	"\U0010ffff", "\U000e0001", "\ud7ff", "\ue000", string([]byte{0xff, 0xfe}), "a\xc3", "\xed\xa0\x80",
	strings.Repeat("k", 1025), strings.Repeat("é", 1025), strings.Repeat("x ", 600),
}

// roundTrip renders the JSON encoding of doc with yamlenc, reads it back
// with goccy/go-yaml and fails unless the result equals the JSON, key order
// included.
func roundTrip(t testing.TB, in []byte) {
	t.Helper()
	want, err := orderedFromJSON(in)
	if err != nil {
		t.Fatalf("bad test input %q: %v", in, err)
	}
	out, err := yamlenc.FromJSON(in)
	if err != nil {
		t.Fatalf("FromJSON(%q): %v", in, err)
	}
	var got any
	// Duplicate keys are legal JSON; yamlenc keeps them, and so must the
	// read-back for the comparison to see them.
	if err := yaml.UnmarshalWithOptions(out, &got, yaml.UseOrderedMap(), yaml.AllowDuplicateMapKey()); err != nil {
		t.Fatalf("goccy cannot read the output of %q:\n%s\nerror: %v", in, out, err)
	}
	if !sameValue(want, got) {
		t.Fatalf("round trip changed %q:\nyaml:\n%s\nread back: %#v", in, out, got)
	}
}

func TestRoundTripStrings(t *testing.T) {
	for _, s := range specialStrings {
		docs := []any{
			s,
			map[string]any{"k": s},
			map[string]any{s: "v"},
			[]any{s},
			map[string]any{"a": []any{map[string]any{"b": s, s: []any{s, []any{s}}}}},
			[]any{[]any{s}, map[string]any{s: map[string]any{s: s}}},
		}
		for _, d := range docs {
			in, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, in)
		}
	}
}

func TestRoundTripJSON(t *testing.T) {
	for _, in := range []string{
		`null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `0.1`, `-0.0`, `1.5e300`, `1e3`, `1E3`,
		`1e-7`, `1E+21`, `2.5e-320`, `1e-400`,
		`9223372036854775807`, `-9223372036854775808`, `18446744073709551615`,
		`18446744073709551616`, `-9223372036854775809`, `100000000000000000000`,
		`123456789012345678901234567890`,
		`{}`, `[]`, `[{}]`, `[[]]`, `{"a":{}}`, `{"a":[]}`, `[[],{},[[]]]`, `[[[1]]]`,
		`{"a":{"b":{"c":[1,{"d":[]}]}}}`, `[null,true,"x",1.5,{"k":null}]`,
		`{"z":1,"a":2,"m":3}`, `{"":""}`, `{"a":[{"b":1,"c":[{"d":{}}]}],"e":[[{"f":[]}]]}`,
		"\n  {\"a\" :\t[ 1 , 2 ]}\n",
	} {
		roundTrip(t, []byte(in))
	}
}

// TestRoundTripToolList round-trips what `stoa get tools -o yaml` prints.
func TestRoundTripToolList(t *testing.T) {
	roundTrip(t, toolListJSON(t, 50))
}

// TestNumbers checks the number forms: JSON's own where YAML reads it the
// same, and the rewritten ones where it would not.
func TestNumbers(t *testing.T) {
	for in, want := range map[string]string{
		`1`:                    "1\n",
		`-0`:                   "-0\n",
		`0.25`:                 "0.25\n",
		`1e3`:                  "1.0e+3\n",
		`1.5E-7`:               "1.5e-7\n",
		`1E+21`:                "1.0e+21\n",
		`18446744073709551615`: "18446744073709551615\n",
		`18446744073709551616`: "18446744073709551616.0\n",
		`-9223372036854775809`: "-9223372036854775809.0\n",
		`{"max": 1e+30}`:       "max: 1.0e+30\n",
	} {
		got, err := yamlenc.FromJSON([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("FromJSON(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestQuotedForYAML11 covers strings goccy reads back unchanged even when
// plain, but YAML 1.1 readers (PyYAML, yaml.v2, most tools) take for a
// boolean, a number, a timestamp or a merge key.
func TestQuotedForYAML11(t *testing.T) {
	for _, s := range []string{
		"yes", "No", "ON", "off", "y", "N", "0b101", "012", "1_000", "1:20", "190:20:30.15",
		"2001-12-14", "2001-1-4", "2001-12-14 21:59:43.10 -5", ".inf", "-.Inf", ".NaN", "+.inf", "<<", "=", "~",
		"1e3", "0x10", "0o17", "---", "...", "--- x", "... x", "\u0085", "a\u2028b", "\ufeffbom",
		"a\u00a0", "\u202eevil", "\u3000", "a\u3000",
	} {
		got := render(t, map[string]string{"k": s})
		if !strings.HasPrefix(got, `k: "`) {
			t.Errorf("%q rendered plain: %q", s, got)
		}
	}
}

// TestPlainWhereSafe keeps the output readable: the values stoa prints
// most are not quoted.
func TestPlainWhereSafe(t *testing.T) {
	for _, s := range []string{
		"plain", "two words", "1s", "20s", "100/s", "1.5MB", "v1.2.3", "http://127.0.0.1:9001/api",
		"/items/{id}", "^[a-z0-9-]+$", "a:b", "a#b", "-a", "naïve café", "日本語", "emoji 😀", "👨‍👩‍👧",
		"a, b", "a'b", `a"b`, `a\b`, "GET", "4xx", "2xx", "1st", "1.2.3", "198.51.100.7", "127.0.0.1:9001", "0xZZ", "_", "._", "_tmp", "stoa.io/v1alpha1", "tool-1", "team_7",
	} {
		got := render(t, map[string]string{"k": s})
		if got != "k: "+s+"\n" {
			t.Errorf("%q rendered as %q, want it plain", s, got)
		}
	}
}

// TestEscapes checks that quoted strings use YAML escapes, not Go's.
func TestEscapes(t *testing.T) {
	for s, want := range map[string]string{
		"a\x00b":       `"a\0b"`,
		"\x1b[1m":      `"\e[1m"`,
		"\x01\x7f":     `"\x01\x7F"`,
		"\u0085":       `"\N"`,
		"\u00a0x":      `"\_x"`,
		"\u2028\u2029": `"\L\P"`,
		"\ufeff":       `"\uFEFF"`,
		"\u0080":       `"\x80"`,
		"\U000e0001":   `"\U000E0001"`,
		"\xff":         "\"\ufffd\"", // encoding/json decodes it to U+FFFD
		"tab\there":    `"tab\there"`,
		"x\ny\r\n":     `"x\ny\r\n"`,
		"\"q\\":        `"\"q\\"`,
		"é \u3000😀 ":   `"é ` + "\u3000" + `😀 "`,
	} {
		// Marshal would turn \xff into U+FFFD before yamlenc sees it, so
		// the JSON is written by hand.
		in := []byte(`"` + jsonEscape(s) + `"`)
		got, err := yamlenc.FromJSON(in)
		if err != nil || string(got) != want+"\n" {
			t.Errorf("FromJSON(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func jsonEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// TestLayout pins the exact shape of the output: `-o yaml` is a contract.
func TestLayout(t *testing.T) {
	in := `{"apiVersion":"stoa.io/v1alpha1","kind":"Tool","metadata":{"name":"t","labels":{}},
	"spec":{"tags":[],"ops":[{"name":"get","args":["a",["b","c"],{"d":1}]},{}],"n":null,"on":true}}`
	want := `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: t
  labels: {}
spec:
  tags: []
  ops:
    - name: get
      args:
        - a
        - - b
          - c
        - d: 1
    - {}
  "n": null
  "on": true
`
	got, err := yamlenc.FromJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	long := strings.Repeat("k", 1025)
	got, err = yamlenc.Marshal(map[string]any{long: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "? " + long + "\n:\n  - 1\n"; string(got) != want {
		t.Errorf("long key: got %q, want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, in := range []string{``, ` `, `{`, `[1,]`, `{"a"}`, `{1:2}`, `nul`, `{} {}`, `1 2`, `"a" x`, `1e400`, `[-1E999]`} {
		if out, err := yamlenc.FromJSON([]byte(in)); err == nil {
			t.Errorf("FromJSON(%q) = %q, want an error", in, out)
		} else if !strings.HasPrefix(err.Error(), "render yaml: ") {
			t.Errorf("FromJSON(%q) error %q lacks the render yaml: prefix", in, err)
		}
	}
	if _, err := yamlenc.Marshal(math.NaN()); err == nil {
		t.Error("Marshal(NaN) succeeded; JSON has no NaN")
	}
}

func render(t *testing.T, v any) string {
	t.Helper()
	b, err := yamlenc.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameValue compares a JSON value decoded by orderedFromJSON with what
// goccy/go-yaml read back: same types, same key order, numbers equal as
// encoding/json would decode them.
func sameValue(want, got any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case bool, string:
		return want == got
	case json.Number:
		return sameNumber(w, got)
	case yaml.MapSlice:
		g, ok := got.(yaml.MapSlice)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if g[i].Key != w[i].Key || !sameValue(w[i].Value, g[i].Value) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameValue(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// sameNumber holds integers to exact equality and everything else to the
// float64 encoding/json would make of it.
func sameNumber(n json.Number, got any) bool {
	s := string(n)
	switch g := got.(type) {
	case int:
		i, err := strconv.ParseInt(s, 10, 64)
		return err == nil && i == int64(g)
	case int64:
		i, err := strconv.ParseInt(s, 10, 64)
		return err == nil && i == g
	case uint64:
		u, err := strconv.ParseUint(s, 10, 64)
		return err == nil && u == g
	case float64:
		f, err := strconv.ParseFloat(s, 64)
		return err == nil && f == g
	}
	return false
}
