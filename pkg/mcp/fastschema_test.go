package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// fastSchemas are input schemas of the kinds tools declare, each compiled
// by the fast path (TestFastSchemaCompiles).
var fastSchemas = []string{
	`{"type":"object"}`,
	`{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`,
	`{"type":"object","properties":{"id":{"type":"string","pattern":"^inv-","description":"Invoice id."},"expand":{"type":"array","items":{"type":"string","enum":["lines","taxes","payments"]}}},"required":["id"]}`,
	`{"type":"object","properties":{"id":{"type":["string","integer"],"description":"Fills {id} in the path."}},"required":["id"]}`,
	`{"type":"object","additionalProperties":false,"properties":{"q":{"type":"string","minLength":2,"maxLength":5},"limit":{"type":"integer","minimum":1,"maximum":100},"ratio":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1.5},"dry":{"type":"boolean"}},"required":["q"]}`,
	`{"type":"object","properties":{"mode":{"enum":["a","b","é"]},"tag":{"const":"x"},"n":{"type":["number","null"]},"any":{},"flag":true,"list":{"type":"array","minItems":1,"maxItems":3}},"required":["mode","extra"]}`,
	`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"when":{"type":"string","format":"date-time"},"word":{"type":"string","pattern":"^[a-z]+$","minLength":1}}}`,
	`{"type":"object","properties":{"ids":{"type":"array","items":{"type":"integer","minimum":-5}},"names":{"type":"array","items":{"pattern":"o"}}}}`,
}

// fullSchema compiles a schema for both validators.
func fullSchema(t testing.TB, schema string) *compiledSchema {
	t.Helper()
	cs, err := newSchemaCompiler().compile([]byte(schema))
	if err != nil {
		t.Fatalf("compile %s: %v", schema, err)
	}
	return cs
}

// agree fails when the fast path's verdict contradicts the full
// validator's: valid must mean valid, invalid must mean invalid.
func agree(t testing.TB, cs *compiledSchema, schema string, args []byte) {
	t.Helper()
	if cs.fast == nil {
		return
	}
	fv := cs.fast.check(args)
	msg := cs.validateFull(args)
	switch {
	case fv == fastValid && msg != "":
		t.Fatalf("schema %s\nargs %s\nfast path: valid; full validator: %s", schema, args, msg)
	case fv == fastInvalid && msg == "":
		t.Fatalf("schema %s\nargs %s\nfast path: invalid; full validator: valid", schema, args)
	}
}

func TestFastSchemaCompiles(t *testing.T) {
	for _, s := range fastSchemas {
		if cs := fullSchema(t, s); cs.fast == nil && !cs.anyObject {
			t.Errorf("not compiled by the fast path: %s", s)
		}
	}
	// Schemas the fast path must leave to the full validator.
	for _, s := range []string{
		`{"type":"object","properties":{"o":{"type":"object"}}}`,
		`{"type":"object","properties":{"n":{"type":"number","multipleOf":2}}}`,
		`{"type":"object","properties":{"n":{"enum":[1,2]}}}`,
		`{"type":"object","properties":{"n":{"minimum":1e3}}}`,
		`{"type":"object","properties":{"n":{"minimum":1234567890123456}}}`,
		`{"type":"object","additionalProperties":{"type":"string"}}`,
		`{"type":"object","patternProperties":{"^x":{}}}`,
		`{"type":"object","properties":{"a":{"anyOf":[{"type":"string"}]}}}`,
		`{"type":"object","properties":{"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{}}}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`,
		`{"type":"object","properties":{"a":false}}`,
		`{"type":"object","properties":{"a":{"type":"array","items":{"type":"array","items":{}}}}}`,
		`{"type":"object","properties":{"a":{"type":"array","uniqueItems":true}}}`,
	} {
		if cs := fullSchema(t, s); cs.fast != nil {
			t.Errorf("compiled by the fast path, which does not implement it: %s", s)
		}
	}
}

func TestFastSchemaVerdicts(t *testing.T) {
	cs := fullSchema(t, fastSchemas[2])
	for _, c := range []struct {
		args string
		want fastVerdict
	}{
		{`{"id":"inv-1","expand":["lines","taxes"]}`, fastValid},
		{`{"id":"inv-1"}`, fastValid},
		{`{"id":"inv-1","other":{"a":1}}`, fastUnsure},
		{`{"id":"bad"}`, fastInvalid},
		{`{"expand":["lines"]}`, fastInvalid},
		{`{"id":"inv-1","id":"inv-2"}`, fastInvalid},
		{`{"id":"inv-1","expand":["nope"]}`, fastInvalid},
		{`{"id":"inv-\u0031"}`, fastUnsure},
		{`{"\u0069d":"inv-1"}`, fastUnsure},
		{`null`, fastInvalid},
		{``, fastInvalid},
	} {
		if got := cs.fast.check([]byte(c.args)); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.args, got, c.want)
		}
		agree(t, cs, fastSchemas[2], []byte(c.args))
	}
}

// TestFastSchemaAgreesRandom compares the two validators on random
// argument objects built from each schema's property names and values of
// every kind (fixed seed: reproducible).
func TestFastSchemaAgreesRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 6))
	n := 4000
	if testing.Short() {
		n = 500
	}
	for _, s := range fastSchemas {
		cs := fullSchema(t, s)
		names := propertyNames(s)
		for range n {
			agree(t, cs, s, randomArgs(r, names))
		}
	}
}

// propertyNames returns the schema's property and required names; the
// generator adds an unknown name and an escaped known one now and then.
func propertyNames(schema string) []string {
	v, _ := rpc.DecodeValue([]byte(schema))
	m := v.(map[string]any)
	var names []string
	if p, ok := m["properties"].(map[string]any); ok {
		for k := range p {
			names = append(names, k)
		}
	}
	if req, ok := m["required"].([]any); ok {
		for _, k := range req {
			if !slices.Contains(names, k.(string)) {
				names = append(names, k.(string))
			}
		}
	}
	slices.Sort(names) // map order is random; the seed must reproduce
	return names
}

var randomScalars = []string{
	`""`, `"a"`, `"ab"`, `"abcdef"`, `"inv-1"`, `"inv-"`, `"xinv-"`, `"lines"`, `"taxes"`, `"é"`, `"ééé"`,
	`"x"`, `"x"`, `"a"`, `"b"`, `"o"`, `"abc"`, `"inv-2"`, `"payments"`, `"foo"`, `"\u00e9"`, `"inv-\n"`, `"\ud800"`, "\"\xff\"", `"2024-01-01T00:00:00Z"`,
	`0`, `-0`, `1`, `-5`, `-6`, `5`, `100`, `101`, `1.5`, `1.0`, `0.5`, `1e2`, `1E0`, `-1.25e-3`,
	`12345678901234567890`, `0.1`, `1.4999999999999999999`, `true`, `false`, `null`,
}

func randomValue(r *rand.Rand, depth int) string {
	switch k := r.IntN(10); {
	case k < 7 || depth > 2:
		return randomScalars[r.IntN(len(randomScalars))]
	case k < 9:
		n := r.IntN(5)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = randomValue(r, depth+1)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		n := r.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`"k%d":%s`, r.IntN(2), randomValue(r, depth+1))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}

func randomArgs(r *rand.Rand, names []string) []byte {
	if r.IntN(50) == 0 {
		return []byte("null")
	}
	picked := slices.Clone(names)
	r.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	picked = picked[:r.IntN(len(picked)+1)]
	switch r.IntN(20) {
	case 0:
		picked = append(picked, "zz") // unknown
	case 1:
		if len(names) > 0 {
			picked = append(picked, names[0]) // maybe a duplicate
		}
	case 2:
		picked = append(picked, "i\\u0064") // "id", escaped
	}
	parts := make([]string, len(picked))
	for i, name := range picked {
		parts[i] = fmt.Sprintf(`%q: %s`, name, randomValue(r, 0))
		parts[i] = strings.ReplaceAll(parts[i], `\\u`, `\u`) // keep the escaped key escaped once
	}
	return []byte("{" + strings.Join(parts, ", ") + "}")
}

// FuzzFastSchema holds the fast path to the full validator's verdicts on
// arbitrary arguments for each schema of fastSchemas.
func FuzzFastSchema(f *testing.F) {
	for i := range fastSchemas {
		f.Add(uint8(i), []byte(`{"id":"inv-1","expand":["lines"]}`))
		f.Add(uint8(i), []byte(`{"q":"abc","limit":7,"ratio":1.25,"dry":true}`))
		f.Add(uint8(i), []byte(`{"mode":"é","extra":null,"n":1e2,"list":[1,"a",{}]}`))
	}
	compiled := make([]*compiledSchema, len(fastSchemas))
	for i, s := range fastSchemas {
		compiled[i] = fullSchema(f, s)
	}
	f.Fuzz(func(t *testing.T, which uint8, args []byte) {
		i := int(which) % len(fastSchemas)
		// Arguments reach validation as a syntactically valid object or
		// null (DecodeParams and callTool check that first).
		if !rpc.Valid(args) {
			return
		}
		if j := rpc.SkipSpace(args, 0); args[j] != '{' && string(args[j:]) != "null" {
			return
		}
		agree(t, compiled[i], fastSchemas[i], args)
	})
}

// TestEncodeSchemaMatchesEncodingJSON holds encodeSchema to the bytes
// encoding/json writes (sorted keys, no HTML escaping): tools/list shows
// them, and equal schemas must keep encoding equally.
func TestEncodeSchemaMatchesEncodingJSON(t *testing.T) {
	ref := func(v map[string]any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		return strings.TrimRight(buf.String(), "\n")
	}
	strs := []string{"", "id", "é", "a<b>&c", "line\nbreak", "tab\t", "q\"uote", "back\\slash", "\x00\x1f\x7f",
		"\u2028\u2029", "bad\xffutf8", "日本語", "\b\f", "emoji 😀", "{path}",
		"zero\u200bwidth", "tag\U000E0041", "del\x7f", "bidi\u202e", "\x01", `\u200b`, `\b`}
	scalars := []any{nil, true, false, 0, -7, int64(1) << 40, uint64(1) << 63, 1.5, 1e21, 1e-7, 3.0, 0.1,
		json.Number("12"), json.Number("1.50"), float32(2.5)}
	r := rand.New(rand.NewPCG(4, 15))
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := r.IntN(6); {
		case k == 0 || depth > 3:
			return scalars[r.IntN(len(scalars))]
		case k == 1:
			return strs[r.IntN(len(strs))]
		case k <= 3:
			m := map[string]any{}
			for range r.IntN(5) {
				m[strs[r.IntN(len(strs))]] = gen(depth + 1)
			}
			return m
		default:
			a := make([]any, r.IntN(4))
			for i := range a {
				a[i] = gen(depth + 1)
			}
			return a
		}
	}
	for range 3000 {
		v := map[string]any{"type": "object", "x": gen(0), strs[r.IntN(len(strs))]: gen(0)}
		got, err := encodeSchema(v)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref(v); string(got) != want {
			t.Fatalf("encodeSchema:\n got %s\nwant %s", got, want)
		}
		// compileTool skips stripSchema when mayHaveInvisible says no.
		if _, changed, err := stripSchema(v); (changed || err != nil) && !mayHaveInvisible(got) {
			t.Fatalf("stripSchema changes %s (err %v), mayHaveInvisible says no", got, err)
		}
	}
}
