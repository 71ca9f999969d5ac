package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Digest is the SHA-256 of an object's canonical JSON: two objects with
// the same digest are Equal. stoad keeps the digest of every live object,
// so a plan compares one encoding per desired object instead of two, and
// the CLI can tell that an apply would change nothing without sending it.
type Digest [sha256.Size]byte

// DigestOf returns o's digest.
func DigestOf(o *spec.Object) Digest {
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	return digestIn(buf, o)
}

// digestIn is DigestOf encoding in buf.
func digestIn(buf *bytes.Buffer, o *spec.Object) Digest {
	buf.Reset()
	if err := Canonical(buf, o); err != nil {
		// Unencodable objects never match anything.
		return Digest{}
	}
	return sha256.Sum256(buf.Bytes())
}

// String renders the digest in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText implements encoding.TextMarshaler.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Digest) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(d) {
		return fmt.Errorf("digest: want %d hex digits", 2*len(d))
	}
	_, err := hex.Decode(d[:], b)
	return err
}

// Digests maps live objects to their digests.
type Digests map[spec.Ref]Digest

// DigestAll computes the digests of objs, on all processors.
func DigestAll(objs []*spec.Object) Digests {
	dgs := make([]Digest, len(objs))
	_ = ForEach(len(objs), func(i int, buf *bytes.Buffer) error {
		dgs[i] = digestIn(buf, objs[i])
		return nil
	})
	out := make(Digests, len(objs))
	for i, o := range objs {
		out[o.Ref()] = dgs[i]
	}
	return out
}

// Next returns the digests after changes, sharing nothing with d.
func (d Digests) Next(changes []Change) Digests {
	out := make(Digests, len(d)+len(changes))
	for k, v := range d {
		out[k] = v
	}
	for _, c := range changes {
		switch {
		case c.Op == Delete:
			delete(out, c.Ref)
		case c.afterJSON != nil:
			out[c.Ref] = sha256.Sum256(c.afterJSON)
		default:
			out[c.Ref] = DigestOf(c.After)
		}
	}
	return out
}
