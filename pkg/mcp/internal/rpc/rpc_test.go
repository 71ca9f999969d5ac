package rpc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		code   int // 0: success
		kind   Kind
		method string
		id     string
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 0, KindRequest, "tools/list", "1"},
		{"string id", `{"jsonrpc":"2.0","id":"a-1","method":"ping","params":{}}`, 0, KindRequest, "ping", `"a-1"`},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 0, KindNotification, "notifications/initialized", ""},
		{"response", `{"jsonrpc":"2.0","id":7,"result":{}}`, 0, KindResponse, "", "7"},
		{"escaped method", `{"jsonrpc":"2.0","id":1,"method":"tools\/list"}`, 0, KindRequest, "tools/list", "1"},
		{"escaped key", `{"jsonrpc":"2.0","id":1,"\u006dethod":"ping"}`, 0, KindRequest, "ping", "1"},
		{"unknown member ignored", `{"jsonrpc":"2.0","id":1,"method":"ping","x":[1,{"y":null}]}`, 0, KindRequest, "ping", "1"},
		{"empty", ``, CodeParseError, 0, "", ""},
		{"spaces", "  \n", CodeParseError, 0, "", ""},
		{"garbage", `{"jsonrpc":`, CodeParseError, 0, "", ""},
		{"trailing", `{"jsonrpc":"2.0","id":1,"method":"ping"} x`, CodeParseError, 0, "", ""},
		{"two objects", `{"jsonrpc":"2.0","id":1,"method":"ping"}{}`, CodeParseError, 0, "", ""},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, CodeInvalidRequest, 0, "", ""},
		{"invalid batch", `[{"jsonrpc":"2.0",]`, CodeParseError, 0, "", ""},
		{"scalar", `42`, CodeInvalidRequest, 0, "", ""},
		{"string", `"ping"`, CodeInvalidRequest, 0, "", ""},
		{"no jsonrpc", `{"id":1,"method":"ping"}`, CodeInvalidRequest, 0, "", "1"},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest, 0, "", "1"},
		{"numeric method", `{"jsonrpc":"2.0","id":1,"method":5}`, CodeInvalidRequest, 0, "", "1"},
		{"no method", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, 0, "", "1"},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest, 0, "", ""},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest, 0, "", ""},
		{"fraction id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, CodeInvalidRequest, 0, "", ""},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, CodeInvalidRequest, 0, "", "1"},
		{"duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, CodeInvalidRequest, 0, "", ""},
		{"array params", `{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}`, CodeInvalidParams, KindRequest, "ping", "1"},
		{"control char", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pi\x01ng\"}", CodeParseError, 0, "", ""},
		{"too deep", `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`, CodeParseError, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			err := DecodeRequest([]byte(tt.body), &r)
			code := 0
			if err != nil {
				code = err.Code
			}
			if code != tt.code {
				t.Fatalf("code = %d (%v), want %d", code, err, tt.code)
			}
			if string(r.ID) != tt.id {
				t.Errorf("id = %q, want %q", r.ID, tt.id)
			}
			if tt.code == 0 || tt.kind != 0 {
				if r.Kind != tt.kind || string(r.Method) != tt.method {
					t.Errorf("kind, method = %d, %q; want %d, %q", r.Kind, r.Method, tt.kind, tt.method)
				}
			}
		})
	}
}

func TestDecodeParams(t *testing.T) {
	raw := `{"name":"acme__billing__get","arguments":{"id":"7"},"cursor":"abc",
		"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}`
	var p Params
	if err := DecodeParams([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	if string(p.Name) != "acme__billing__get" || string(p.Arguments) != `{"id":"7"}` || string(p.Cursor) != "abc" ||
		!p.HasMetaVersion || string(p.MetaVersion) != "2026-07-28" || !p.HasMetaCapabilities {
		t.Fatalf("unexpected params: %+v", p)
	}
	for _, bad := range []string{`{"name":1}`, `{"name":"a","name":"b"}`, `{"_meta":[]}`, `{"cursor":5}`,
		`{"_meta":{"io.modelcontextprotocol/clientCapabilities":"x"}}`} {
		if err := DecodeParams([]byte(bad), &p); err == nil || err.Code != CodeInvalidParams {
			t.Errorf("DecodeParams(%s) = %v, want invalid params", bad, err)
		}
	}
}

func TestDecodeValueMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2.5e3,-0,"x\u00e9\ud83d\ude00",true,false,null],"b":{"c":{}}}`, `"\ud800"`, `-1.5E-7`} {
		got, err := DecodeValue([]byte(s))
		if err != nil {
			t.Fatalf("DecodeValue(%s): %v", s, err)
		}
		if want := stdDecode(t, []byte(s)); !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeValue(%s) = %#v, want %#v", s, got, want)
		}
	}
	if _, err := DecodeValue([]byte(`{"a":1,"a":2}`)); err != ErrDuplicateKey {
		t.Errorf("duplicate keys: err = %v", err)
	}
	if _, err := DecodeValue([]byte(`{"x":{"a":1,"a":2}}`)); err != ErrDuplicateKey {
		t.Errorf("nested duplicate keys: err = %v", err)
	}
}

func stdDecode(t testing.TB, b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return v
}

func TestMembers(t *testing.T) {
	ms, err := Members(nil, []byte(`{"a":1,"b\u0021":[2], "c" : {"d":"e"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, string(m.Key)+"="+string(m.Value))
	}
	if want := []string{"a=1", "b!=[2]", `c={"d":"e"}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("Members = %q, want %q", got, want)
	}
	var many strings.Builder
	many.WriteString("{")
	for i := range 40 {
		many.WriteString(`"k` + strconv.Itoa(i) + `":1,`)
	}
	many.WriteString(`"k0":2}`)
	if _, err := Members(nil, []byte(many.String())); err != ErrDuplicateKey {
		t.Errorf("duplicate among many keys: err = %v", err)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t ctl\x01", "é😀", "bad\xffutf8\xed\xa0\x80", "\u2028",
		"a longer plain ASCII string of more than eight bytes", "0123456\"89abcdef\\0123456\x1f", "abcdefgh\xc3\xa9ijklmnop\xff",
		"12345678\n12345678\t123456789\x7f\x80abcdefghi\u00e9\u2028xyz"} {
		out := AppendString(nil, s)
		if !json.Valid(out) {
			t.Fatalf("AppendString(%q) = %s: invalid JSON", s, out)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(s) && back != s {
			t.Errorf("round trip of %q = %q", s, back)
		}
		if b := AppendString(nil, []byte(s)); !bytes.Equal(b, out) {
			t.Errorf("[]byte and string encodings differ: %s vs %s", b, out)
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"acme__billing__get_invoice","arguments":{"id":"inv-1","expand":["lines"]},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
	var r Request
	var p Params
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := DecodeRequest(body, &r); err != nil {
			b.Fatal(err)
		}
		if err := DecodeParams(r.Params, &p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHasSpecial checks the eight-byte test of skipString against the
// byte-wise rule for every byte value in every position.
func TestHasSpecial(t *testing.T) {
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			var w [8]byte
			for i := range w {
				w[i] = 'a'
			}
			w[pos] = byte(c)
			want := c == '"' || c == '\\' || c < 0x20
			got := hasSpecial(binary.LittleEndian.Uint64(w[:]))
			if got != want {
				t.Fatalf("byte %#x at %d: hasSpecial %v, want %v", c, pos, got, want)
			}
		}
	}
}

// TestSpecialFirst checks that the lowest byte special flags is the first
// special byte of the word (skipString jumps to it), for every pair of
// byte values in every pair of positions and random words.
func TestSpecialFirst(t *testing.T) {
	isSpecial := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	check := func(w [8]byte) {
		first := 8
		for i, c := range w {
			if isSpecial(c) {
				first = i
				break
			}
		}
		m := special(binary.LittleEndian.Uint64(w[:]))
		got := 8
		if m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if got != first {
			t.Fatalf("%q: first special byte at %d, special says %d", w[:], first, got)
		}
	}
	for p1 := 0; p1 < 8; p1++ {
		for p2 := p1 + 1; p2 < 8; p2++ {
			for c1 := 0; c1 < 256; c1++ {
				for _, c2 := range []int{0, 0x1f, 0x20, '"', '\\', 0x21, 0x5b, 0x5d, 0x80, 0xa0, 0xff} {
					w := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
					w[p1], w[p2] = byte(c1), byte(c2)
					check(w)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		check(w)
	}
}

// BenchmarkAppendStringJSON: an upstream's JSON answer quoted as the
// text of a tools/call result (every key's quotes escaped).
func BenchmarkAppendStringJSON(b *testing.B) {
	body := []byte(`{"id":"inv-1","amount":42,"currency":"EUR","status":"paid","customer":"cus_1234567890"}`)
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		dst = AppendString(dst[:0], body)
	}
}

func TestAppendStringAllocs(t *testing.T) {
	dst := make([]byte, 0, 256)
	s := `{"id":"inv-1","note":"caf\u00e9"}`
	if n := testing.AllocsPerRun(100, func() { dst = AppendString(dst[:0], s) }); n != 0 {
		t.Errorf("string: %v allocations", n)
	}
	b := []byte(s)
	if n := testing.AllocsPerRun(100, func() { dst = AppendString(dst[:0], b) }); n != 0 {
		t.Errorf("[]byte: %v allocations", n)
	}
}
