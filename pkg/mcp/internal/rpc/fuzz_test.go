package rpc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeRequest checks the hand-written JSON-RPC decoder against
// encoding/json: same validity verdict, and for accepted requests the same
// method, id and params.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"a__b__c","arguments":{"id":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":3,"result":{}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","method":"x"}`,
		`{"jsonrpc":"2.0","id":1,"m\u0065thod":"p\u00e9ng\ud83d\ude00"}`,
		`{"jsonrpc":"2.0","id":-0,"method":"a","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`{"a":[{"b\"c":"x\\\"y"},1.5e3,true,null,-0],"d":{"e\u00e9":"\u00e9","f":[[],{}]} ,"g" : 12 }`,
		`{`, `nul`, `1e`, `"\u12"`, "{\"a\":\"\x00\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r Request
		err := DecodeRequest(body, &r)
		stdValid := json.Valid(body)
		if Valid(body) != stdValid && !tooDeep(body) {
			t.Fatalf("Valid = %v, encoding/json says %v", !stdValid, stdValid)
		}
		if err != nil && err.Code == CodeParseError {
			if stdValid && !tooDeep(body) {
				t.Fatalf("parse error %q for valid JSON", err.Message)
			}
			return
		}
		if !stdValid {
			t.Fatalf("accepted invalid JSON (err=%v)", err)
		}
		if err != nil {
			return
		}
		// encoding/json matches struct fields case-insensitively; MCP keys
		// are case-sensitive, so compare through a map.
		var env map[string]json.RawMessage
		if json.Unmarshal(body, &env) != nil {
			return
		}
		var method string
		_ = json.Unmarshal(env["method"], &method)
		if r.Kind != KindResponse && utf8.Valid(r.Method) && string(r.Method) != method {
			t.Fatalf("method = %q, encoding/json says %q", r.Method, method)
		}
		if r.ID != nil && !bytes.Equal(r.ID, env["id"]) {
			t.Fatalf("id = %s, encoding/json says %s", r.ID, env["id"])
		}
		if r.Params != nil && !bytes.Equal(r.Params, env["params"]) {
			t.Fatalf("params = %s, encoding/json says %s", r.Params, env["params"])
		}
		var p Params
		if DecodeParams(r.Params, &p) == nil && r.Params != nil {
			var std map[string]json.RawMessage
			var name string
			if json.Unmarshal(r.Params, &std) == nil && json.Unmarshal(std["name"], &name) == nil &&
				utf8.Valid(p.Name) && string(p.Name) != name {
				t.Fatalf("params.name = %q, encoding/json says %q", p.Name, name)
			}
		}
		if v, derr := DecodeValue(body); derr == nil {
			d := json.NewDecoder(bytes.NewReader(body))
			d.UseNumber()
			var want any
			if d.Decode(&want) == nil && !reflect.DeepEqual(v, want) {
				t.Fatalf("DecodeValue = %#v, encoding/json says %#v", v, want)
			}
		}
		if Valid(body) {
			sameMembers(t, body, 0)
		}
		enc := AppendString(nil, body)
		if !json.Valid(enc) {
			t.Fatalf("AppendString produced invalid JSON")
		}
		if ref := appendStringBytewise(nil, body); !bytes.Equal(enc, ref) {
			t.Fatalf("AppendString = %s, byte by byte %s", enc, ref)
		}
		var back string
		if utf8.Valid(body) && (json.Unmarshal(enc, &back) != nil || back != string(body)) {
			t.Fatalf("AppendString round trip: %q", back)
		}
	})
}

func tooDeep(b []byte) bool {
	depth, maxDepth, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '[' || c == '{'):
			depth++
			maxDepth = max(maxDepth, depth)
		case !inStr && (c == ']' || c == '}'):
			depth--
		}
	}
	return maxDepth > MaxDepth
}

// appendStringBytewise is AppendString one byte at a time (as it was
// before it took eight plain bytes at a time): the reference its output
// must equal byte for byte.
func appendStringBytewise(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		size := runeLen(s, i)
		if size == 0 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// sameMembers requires the trusted iterator to split the valid JSON object
// b (and the objects and arrays' objects within it, a few levels deep) into
// the members the validating one does.
func sameMembers(t *testing.T, b []byte, level int) {
	i := SkipSpace(b, 0)
	if i >= len(b) || level > 4 {
		return
	}
	if b[i] == '[' {
		for _, e := range ArrayElements(b, nil) {
			sameMembers(t, e, level+1)
		}
		return
	}
	if b[i] != '{' {
		return
	}
	v, tr := NewIterator(b), NewTrustedIterator(b)
	for {
		k1, v1, ok1 := v.Next()
		k2, v2, ok2 := tr.Next()
		if ok1 != ok2 || !bytes.Equal(k1, k2) || !bytes.Equal(v1, v2) || v.KeyEscaped != tr.KeyEscaped {
			t.Fatalf("%q: validating %v %q=%q, trusted %v %q=%q", b, ok1, k1, v1, ok2, k2, v2)
		}
		if !ok1 {
			break
		}
		sameMembers(t, v1, level+1)
	}
	if v.Err() != nil || tr.Err() != nil || v.End() != tr.End() {
		t.Fatalf("%q: validating ends at %d (%v), trusted at %d (%v)", b, v.End(), v.Err(), tr.End(), tr.Err())
	}
}
