package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// encodedBody is a request body already encoded as JSON, sent as it is.
type encodedBody []byte

// encodeBody encodes a request body.
func encodeBody(in any) ([]byte, error) {
	if b, ok := in.(encodedBody); ok {
		return b, nil
	}
	return json.Marshal(in)
}

// applyBody encodes an apply request whose objects are already encoded as a
// JSON array. json.Marshal would check and copy the objects — megabytes for
// a large apply — once more; the request is assembled around them instead,
// byte for byte what json.Marshal writes for valid, compact objects.
func applyBody(req *api.ApplyRequest, objects json.RawMessage) (encodedBody, error) {
	if len(objects) == 0 {
		objects = json.RawMessage("null")
	}
	head, err := json.Marshal(struct {
		*api.ApplyRequest
		Objects json.RawMessage `json:"objects"`
	}{req, json.RawMessage("null")})
	if err != nil {
		return nil, err
	}
	// The objects field comes last: it is the outer struct's.
	const tail = `"objects":null}`
	if !bytes.HasSuffix(head, []byte(tail)) {
		b, err := json.Marshal(struct {
			*api.ApplyRequest
			Objects json.RawMessage `json:"objects"`
		}{req, objects})
		return b, err
	}
	head = head[:len(head)-len("null}")]
	out := make([]byte, 0, len(head)+len(objects)+1)
	out = append(append(append(out, head...), objects...), '}')
	return out, nil
}

// digestList decodes stoad's answer to GET /v1/digests. 10,000 digests are
// about 1 MB of JSON; encoding/json's reflection (hex digests through
// UnmarshalText, refs field by field) took a no-op apply ~15 ms of CPU. It
// reads the answer in the shape stoad writes it and leaves anything else —
// escapes, other spacing, unknown fields — to encoding/json.
type digestList struct {
	api.DigestList
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *digestList) UnmarshalJSON(b []byte) error {
	if parseDigestList(b, &l.DigestList) {
		return nil
	}
	l.DigestList = api.DigestList{}
	return json.Unmarshal(b, &l.DigestList)
}

// parseDigestList parses the compact form
// {"revision":N,"items":[{"ref":{"kind":K,"namespace":NS,"name":N},"digest":HEX},...]}
// (namespace optional, strings without escapes) and reports whether b was
// exactly that.
func parseDigestList(b []byte, l *api.DigestList) bool {
	p := digestParser{b: b}
	if !p.lit(`{"revision":`) {
		return false
	}
	rev, ok := p.int()
	if !ok || !p.lit(`,"items":[`) {
		return false
	}
	l.Revision = rev
	l.Items = make([]api.ObjectDigest, 0, bytes.Count(b, []byte(`"digest"`)))
	for first := true; !p.lit("]"); first = false {
		if !first && !p.lit(",") {
			return false
		}
		var it api.ObjectDigest
		if !p.lit(`{"ref":{"kind":`) {
			return false
		}
		kind, ok := p.str()
		if !ok {
			return false
		}
		it.Ref.Kind = spec.Kind(kind)
		if p.lit(`,"namespace":`) {
			if it.Ref.Namespace, ok = p.str(); !ok {
				return false
			}
		}
		if !p.lit(`,"name":`) {
			return false
		}
		if it.Ref.Name, ok = p.str(); !ok || !p.lit(`},"digest":"`) {
			return false
		}
		if p.i+2*len(it.Digest)+2 > len(p.b) || p.b[p.i+2*len(it.Digest)] != '"' {
			return false
		}
		if _, err := hex.Decode(it.Digest[:], p.b[p.i:p.i+2*len(it.Digest)]); err != nil {
			return false
		}
		p.i += 2*len(it.Digest) + 1
		if !p.lit("}") {
			return false
		}
		l.Items = append(l.Items, it)
	}
	return p.lit("}") && p.i == len(p.b)
}

type digestParser struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *digestParser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// int consumes a non-negative decimal integer.
func (p *digestParser) int() (int64, bool) {
	j := p.i
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	if j == p.i || j-p.i > 18 || (p.b[p.i] == '0' && j-p.i > 1) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	p.i = j
	return n, err == nil
}

// str consumes a string of printable ASCII without escapes.
func (p *digestParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := string(p.b[p.i+1 : j])
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", false
		}
	}
	return "", false
}
