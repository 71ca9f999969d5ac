// Package bundle turns one revision of stoa's configuration into a signed,
// content-addressed bundle, the unit a control plane ships to data planes
// in fleet mode.
//
// A bundle is canonical JSON, one object per line in dependency order:
//
//	{"apiVersion":"stoa.io/v1alpha1","kind":"Bundle","revision":7,"objects":[
//	{...Tenant acme...},
//	{...Tool acme/billing...}
//	]}
//
// Each object line is the object's canonical encoding (plan.Canonical), so
// the same objects and revision always give the same bytes and the same
// SHA-256 digest, whoever builds them. The signature is cosign's: ECDSA
// P-256 over the SHA-256 of the file, base64, so `cosign verify-blob`
// checks a bundle file as it is. Because every object has its own line, a
// receiver holding revision N rebuilds revision N+k's exact bytes from a
// Delta (changed objects and deleted refs) and checks the signature over
// the rebuilt bytes.
//
// Parse accepts only canonical bytes, so a bundle has exactly one encoding
// and its digest names its content. Data planes call Open or OpenDelta,
// which check signature, digest and revision before anything is parsed or
// prepared and fail with distinct error types (see Reason).
//
// The package is pure: it links no network, proxy or daemon code.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Kind is the bundle envelope's kind; DeltaKind is a delta's.
const (
	Kind      = "Bundle"
	DeltaKind = "BundleDelta"
)

// MaxRevision is the highest revision a bundle carries: 2^53-1, the
// largest integer every JSON decoder (float64 ones included) reads exactly.
const MaxRevision = 1<<53 - 1

// header is every bundle's first bytes; the revision follows.
const header = `{"apiVersion":"` + spec.APIVersion + `","kind":"` + Kind + `","revision":`

// Digest is the SHA-256 of a bundle's bytes. It renders as "sha256:<hex>",
// the form cosign, OCI registries and `stoa bundle verify` print.
type Digest [sha256.Size]byte

// String renders d as sha256:<hex>.
func (d Digest) String() string { return "sha256:" + hex.EncodeToString(d[:]) }

// IsZero reports whether d is unset.
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText implements encoding.TextMarshaler.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDigest reads "sha256:<64 hex digits>" (or the bare hex digits).
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h := strings.TrimPrefix(s, "sha256:")
	if len(h) != hex.EncodedLen(len(d)) {
		return d, fmt.Errorf("parse digest %q: want sha256:<%d hex digits>", s, hex.EncodedLen(len(d)))
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("parse digest %q: %w", s, err)
	}
	return d, nil
}

// Bundle is one revision's objects in canonical form. It is immutable:
// callers must not modify the bytes or objects it hands out.
type Bundle struct {
	rev    int64
	objs   []*spec.Object
	lines  [][]byte // each object's canonical JSON, without newline
	digest Digest

	// raw is the encoding of a parsed bundle; others' is joined from
	// lines on first use (Bytes, joined): a bundle rebuilt from a delta
	// is hashed line by line, and a data plane never needs its 10 MB
	// joined.
	raw        []byte
	joinedOnce sync.Once
	joined     []byte
}

// Revision is the configuration revision the bundle carries.
func (b *Bundle) Revision() int64 { return b.rev }

// Objects are the bundle's objects in dependency order (shared; read only).
func (b *Bundle) Objects() []*spec.Object { return b.objs }

// Line is object i's canonical JSON, its line in Bytes without the
// separating comma (shared; read only).
func (b *Bundle) Line(i int) []byte { return b.lines[i] }

// Len is the number of objects.
func (b *Bundle) Len() int { return len(b.objs) }

// Bytes is the canonical encoding, the exact bytes that are signed.
func (b *Bundle) Bytes() []byte {
	if b.raw != nil {
		return b.raw
	}
	b.joinedOnce.Do(func() { b.joined = join(b.rev, b.lines) })
	return b.joined
}

// Digest is the SHA-256 of Bytes.
func (b *Bundle) Digest() Digest { return b.digest }

// Build makes revision rev's bundle from objs, which must be defaulted the
// way the daemon stores them (spec.Default) so that every builder of the
// same configuration arrives at the same digest. objs is not modified;
// the bundle shares its objects.
func Build(rev int64, objs []*spec.Object) (*Bundle, error) {
	if rev < 1 || rev > MaxRevision {
		return nil, fmt.Errorf("build bundle: revision %d: revisions run from 1 to %d", rev, int64(MaxRevision))
	}
	sorted := append([]*spec.Object(nil), objs...)
	plan.SortObjects(sorted)
	for i, o := range sorted {
		if err := checkEnvelope(o); err != nil {
			return nil, fmt.Errorf("build bundle: %w", err)
		}
		if i > 0 && !sorted[i-1].Ref().Less(o.Ref()) {
			return nil, fmt.Errorf("build bundle: %s is given twice", o.Ref())
		}
	}
	lines := make([][]byte, len(sorted))
	err := forEach(len(sorted), func(i int, buf *bytes.Buffer) error {
		o := sorted[i]
		line, err := canonical(buf, o)
		if err != nil {
			return fmt.Errorf("build bundle: %s: %w", o.Ref(), err)
		}
		// A bundle that its own Parse refused would be refused by every
		// data plane, forever: check that the object survives decoding.
		if err := roundTrips(buf, line); err != nil {
			return fmt.Errorf("build bundle: %s: %w", o.Ref(), err)
		}
		lines[i] = line
		return nil
	})
	if err != nil {
		return nil, err
	}
	return assemble(rev, sorted, lines), nil
}

// checkEnvelope rejects objects no bundle can carry.
func checkEnvelope(o *spec.Object) error {
	switch {
	case o == nil:
		return fmt.Errorf("nil object")
	case o.APIVersion != spec.APIVersion:
		return fmt.Errorf("%s: apiVersion %q, want %s", o.Ref(), o.APIVersion, spec.APIVersion)
	case o.Spec == nil || spec.NewSpec(o.Kind) == nil:
		return fmt.Errorf("%s: unknown kind or missing spec", o.Ref())
	case o.Spec.Kind() != o.Kind:
		return fmt.Errorf("%s: spec is a %s spec", o.Ref(), o.Spec.Kind())
	}
	return nil
}

// canonical returns o's canonical JSON without the trailing newline, in a
// new slice.
func canonical(buf *bytes.Buffer, o *spec.Object) ([]byte, error) {
	buf.Reset()
	if err := plan.Canonical(buf, o); err != nil {
		return nil, err
	}
	return bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// roundTrips checks that line decodes to an object whose canonical
// encoding is line again.
func roundTrips(buf *bytes.Buffer, line []byte) error {
	var o spec.Object
	if err := o.UnmarshalJSON(line); err != nil {
		return fmt.Errorf("its JSON does not decode: %w", err)
	}
	buf.Reset()
	if err := plan.Canonical(buf, &o); err != nil {
		return err
	}
	again := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if !bytes.Equal(again, line) {
		at := firstDiff(again, line)
		return fmt.Errorf("its JSON does not decode to the same object (differs at byte %d: %s)", at, excerpt(line, at))
	}
	return nil
}

// assemble makes a bundle of canonical object lines; its digest is taken
// line by line, without joining them (Bytes does, when asked).
func assemble(rev int64, objs []*spec.Object, lines [][]byte) *Bundle {
	return &Bundle{rev: rev, objs: objs, lines: lines, digest: digestLines(rev, lines)}
}

// opening is the bundle's first line up to the first object.
func opening(rev int64) []byte {
	b := make([]byte, 0, len(header)+20+len(`,"objects":[`)+1)
	b = append(b, header...)
	b = strconv.AppendInt(b, rev, 10)
	b = append(b, `,"objects":[`...)
	return append(b, '\n')
}

const closing = "]}\n"

// digestLines is the SHA-256 of join(rev, lines), without joining them.
func digestLines(rev int64, lines [][]byte) Digest {
	h := sha256.New()
	h.Write(opening(rev))
	for i, l := range lines {
		h.Write(l)
		if i < len(lines)-1 {
			h.Write([]byte(",\n"))
		} else {
			h.Write([]byte("\n"))
		}
	}
	h.Write([]byte(closing))
	var d Digest
	h.Sum(d[:0])
	return d
}

// size is len(b.Bytes()), without joining.
func (b *Bundle) size() int {
	if b.raw != nil {
		return len(b.raw)
	}
	n := len(opening(b.rev)) + len(closing)
	for _, l := range b.lines {
		n += len(l) + 1
	}
	return n + max(len(b.lines)-1, 0)
}

// writeTo writes b.Bytes() to w, without joining them if they are not.
func (b *Bundle) writeTo(w io.Writer) error {
	if b.raw != nil {
		_, err := w.Write(b.raw)
		return err
	}
	if _, err := w.Write(opening(b.rev)); err != nil {
		return err
	}
	for i, l := range b.lines {
		sep := ",\n"
		if i == len(b.lines)-1 {
			sep = "\n"
		}
		if _, err := w.Write(l); err != nil {
			return err
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, closing)
	return err
}

// join is the bundle's encoding: the opening, one object per line, a
// comma after every object but the last, and the closing line.
func join(rev int64, lines [][]byte) []byte {
	n := len(header) + 20 + len(`,"objects":[`) + len("\n]}\n")
	for _, l := range lines {
		n += len(l) + 2
	}
	raw := make([]byte, 0, n)
	raw = append(raw, opening(rev)...)
	for i, l := range lines {
		raw = append(raw, l...)
		if i < len(lines)-1 {
			raw = append(raw, ',')
		}
		raw = append(raw, '\n')
	}
	return append(raw, closing...)
}

// Parse reads a bundle, accepting only its canonical encoding: the exact
// bytes Build produces for the same revision and objects. Anything else
// (reordered or duplicate objects, other spacing, unknown fields, a
// different number format) is a *FormatError. Parse checks no signature:
// data planes use Open, which verifies the signature first.
func Parse(b []byte) (*Bundle, error) {
	raw := bytes.Clone(b)
	rev, body, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	if string(body) == closing {
		return &Bundle{rev: rev, raw: raw, digest: sha256.Sum256(raw)}, nil
	}
	if !bytes.HasSuffix(body, []byte("\n"+closing)) {
		return nil, formatErr(bytes.Count(raw, []byte("\n"))+1, "bundle is cut short or has data after the end: it ends with a line ]} and a newline")
	}
	lines := bytes.Split(body[:len(body)-len(closing)-1], []byte("\n"))
	for i, line := range lines {
		last := i == len(lines)-1
		if comma := bytes.HasSuffix(line, []byte(",")); comma == last {
			if last {
				return nil, formatErr(i+2, "the last object's line must not end with a comma")
			}
			return nil, formatErr(i+2, "objects are separated by a comma at the end of the line")
		}
		if !last {
			lines[i] = line[: len(line)-1 : len(line)-1]
		}
	}
	objs := make([]*spec.Object, len(lines))
	err = forEach(len(lines), func(i int, buf *bytes.Buffer) error {
		o, err := parseObject(buf, lines[i])
		if err != nil {
			return formatErr(i+2, "%v", err)
		}
		objs[i] = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(objs); i++ {
		if prev, o := objs[i-1].Ref(), objs[i].Ref(); !prev.Less(o) {
			if prev == o {
				return nil, formatErr(i+2, "%s appears twice", o)
			}
			return nil, formatErr(i+2, "%s is out of order: objects come in dependency order (kind, namespace, name), so it goes before %s", o, prev)
		}
	}
	return &Bundle{rev: rev, objs: objs, lines: lines, raw: raw, digest: sha256.Sum256(raw)}, nil
}

// parseHeader checks the first line and returns the revision and the rest.
func parseHeader(raw []byte) (int64, []byte, error) {
	if !bytes.HasPrefix(raw, []byte(header)) {
		return 0, nil, headerError(raw)
	}
	rest := raw[len(header):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	rev, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	if n == 0 || rest[0] == '0' || err != nil || rev > MaxRevision {
		return 0, nil, formatErr(1, "revision must be a whole number from 1 to %d, written without leading zeros", int64(MaxRevision))
	}
	rest = rest[n:]
	const open = `,"objects":[` + "\n"
	if !bytes.HasPrefix(rest, []byte(open)) {
		return 0, nil, formatErr(1, `the first line must end with ,"objects":[ after the revision`)
	}
	return rev, rest[len(open):], nil
}

// headerError explains why raw is not a bundle: not JSON, another kind or
// apiVersion, or a bundle that is not in canonical form.
func headerError(raw []byte) error {
	var env struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return formatErr(1, "not a stoa bundle: %v", err)
	}
	switch {
	case env.Kind != Kind:
		return formatErr(1, "not a stoa bundle: kind %q, want %s", env.Kind, Kind)
	case env.APIVersion != spec.APIVersion:
		return formatErr(1, "unsupported apiVersion %q (supported: %s)", env.APIVersion, spec.APIVersion)
	}
	return formatErr(1, "not in canonical form: a bundle starts with %s", header)
}

// parseObject decodes one object line and checks that it is canonical.
func parseObject(buf *bytes.Buffer, line []byte) (*spec.Object, error) {
	if len(line) == 0 || line[0] != '{' {
		return nil, fmt.Errorf("want one object per line")
	}
	o := new(spec.Object)
	if err := o.UnmarshalJSON(line); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	if err := checkEnvelope(o); err != nil {
		return nil, err
	}
	buf.Reset()
	if err := plan.Canonical(buf, o); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Ref(), err)
	}
	again := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if !bytes.Equal(again, line) {
		at := firstDiff(again, line)
		return nil, fmt.Errorf("%s is not in canonical form at byte %d (%s): unknown or duplicate fields, other field order, spacing or escaping; rebuild it with stoa bundle build", o.Ref(), at+1, excerpt(line, at))
	}
	return o, nil
}

// firstDiff is the index of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// excerpt quotes up to 24 bytes of b from at.
func excerpt(b []byte, at int) string {
	if at >= len(b) {
		return "end of line"
	}
	end := min(at+24, len(b))
	return strconv.Quote(string(b[at:end]))
}
