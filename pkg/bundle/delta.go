package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Version names one bundle: its revision and digest.
type Version struct {
	Revision int64  `json:"revision"`
	Digest   Digest `json:"digest"`
}

// VersionOf returns b's version.
func VersionOf(b *Bundle) Version { return Version{Revision: b.rev, Digest: b.digest} }

// Delta turns one bundle into a later one: the objects added or changed
// and the refs deleted. A receiver that holds From rebuilds To's exact
// bytes with Apply, and verifies Signature (To's cosign signature, set by
// the sender) over them, so a delta is as trustworthy as the full bundle.
// A one-object change costs about that object's size, whatever the size
// of the configuration.
type Delta struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	From       Version `json:"from"`
	To         Version `json:"to"`
	// Upsert are the objects To has that From lacks or has otherwise, in
	// dependency order.
	Upsert []*spec.Object `json:"upsert,omitempty"`
	// Delete are the objects From has and To lacks, in dependency order.
	Delete []spec.Ref `json:"delete,omitempty"`
	// Signature is To's signature (base64), as Sign returns it.
	Signature []byte `json:"signature,omitempty"`
}

// Diff returns the delta from one bundle to another. Both are canonical,
// so comparing object lines is comparing objects.
func Diff(from, to *Bundle) Delta {
	d := Delta{APIVersion: spec.APIVersion, Kind: DeltaKind, From: VersionOf(from), To: VersionOf(to)}
	i, j := 0, 0
	for i < len(from.objs) || j < len(to.objs) {
		switch {
		case j == len(to.objs) || (i < len(from.objs) && from.objs[i].Ref().Less(to.objs[j].Ref())):
			d.Delete = append(d.Delete, from.objs[i].Ref())
			i++
		case i == len(from.objs) || to.objs[j].Ref().Less(from.objs[i].Ref()):
			d.Upsert = append(d.Upsert, to.objs[j])
			j++
		default:
			if !bytes.Equal(from.lines[i], to.lines[j]) {
				d.Upsert = append(d.Upsert, to.objs[j])
			}
			i++
			j++
		}
	}
	return d
}

// Apply rebuilds the bundle d leads to from the one it starts at, and
// checks the rebuilt bytes against d.To.Digest. It does not verify the
// signature: data planes call OpenDelta, which does.
func (d *Delta) Apply(from *Bundle) (*Bundle, error) {
	return d.apply(from, checkDigest)
}

// Rebuild is Apply for the sender of d, who has no digest to check yet:
// d.To.Digest is ignored and the result's digest is the one computed.
// It reports the same errors Apply does otherwise.
func (d *Delta) Rebuild(from *Bundle) (*Bundle, error) {
	return d.apply(from, computeDigest)
}

type applyMode int

const (
	checkDigest   applyMode = iota // hash the result, compare with d.To.Digest
	computeDigest                  // hash the result, d.To.Digest ignored
	trustDigest                    // take d.To.Digest and d.From as they are (readDeltas hashes the last)
)

// apply is Apply, Rebuild, or, trusting d's versions, a link of a chain
// of deltas whose last result the caller hashes (readDeltas).
func (d *Delta) apply(from *Bundle, mode applyMode) (*Bundle, error) {
	if d.Kind != DeltaKind || d.APIVersion != spec.APIVersion {
		return nil, &FormatError{Msg: fmt.Sprintf("not a stoa bundle delta: apiVersion %q kind %q, want %s %s", d.APIVersion, d.Kind, spec.APIVersion, DeltaKind)}
	}
	if d.To.Revision < 1 || d.To.Revision > MaxRevision || (d.To.Digest.IsZero() && mode != computeDigest) {
		return nil, &FormatError{Msg: "delta: to.revision and to.digest are required"}
	}
	if have := VersionOf(from); mode != trustDigest && have != d.From {
		return nil, &BaseError{Want: d.From, Have: have}
	}
	deleted := make(map[spec.Ref]bool, len(d.Delete))
	for _, r := range d.Delete {
		if deleted[r] {
			return nil, &FormatError{Msg: fmt.Sprintf("delta: %s is deleted twice", r)}
		}
		deleted[r] = true
	}
	type upsert struct {
		obj  *spec.Object
		line []byte
	}
	ups := make([]upsert, 0, len(d.Upsert))
	var buf bytes.Buffer
	for _, o := range d.Upsert {
		if err := checkEnvelope(o); err != nil {
			return nil, &FormatError{Msg: "delta: " + err.Error()}
		}
		if deleted[o.Ref()] {
			return nil, &FormatError{Msg: fmt.Sprintf("delta: %s is both upserted and deleted", o.Ref())}
		}
		// The sender's bytes may have been re-encoded in transit (HTML
		// escaping, indentation): re-encode, and let the digest decide.
		line, err := canonical(&buf, o)
		if err != nil {
			return nil, &FormatError{Msg: fmt.Sprintf("delta: %s: %v", o.Ref(), err)}
		}
		ups = append(ups, upsert{o, line})
	}
	sort.SliceStable(ups, func(a, b int) bool { return ups[a].obj.Ref().Less(ups[b].obj.Ref()) })
	for k := 1; k < len(ups); k++ {
		if ups[k-1].obj.Ref() == ups[k].obj.Ref() {
			return nil, &FormatError{Msg: fmt.Sprintf("delta: %s is upserted twice", ups[k].obj.Ref())}
		}
	}

	n := len(from.objs) + len(ups) - len(deleted)
	objs := make([]*spec.Object, 0, max(n, 0))
	lines := make([][]byte, 0, max(n, 0))
	seenDeleted := 0
	i, j := 0, 0
	for i < len(from.objs) || j < len(ups) {
		switch {
		case j == len(ups) || (i < len(from.objs) && from.objs[i].Ref().Less(ups[j].obj.Ref())):
			if deleted[from.objs[i].Ref()] {
				seenDeleted++
			} else {
				objs, lines = append(objs, from.objs[i]), append(lines, from.lines[i])
			}
			i++
		case i == len(from.objs) || ups[j].obj.Ref().Less(from.objs[i].Ref()):
			objs, lines = append(objs, ups[j].obj), append(lines, ups[j].line)
			j++
		default: // changed object
			objs, lines = append(objs, ups[j].obj), append(lines, ups[j].line)
			i++
			j++
		}
	}
	if seenDeleted != len(deleted) {
		return nil, &FormatError{Msg: fmt.Sprintf("delta: deletes %d objects that revision %d does not have", len(deleted)-seenDeleted, from.rev)}
	}
	if mode == trustDigest {
		return &Bundle{rev: d.To.Revision, objs: objs, lines: lines, digest: d.To.Digest}, nil
	}
	next := assemble(d.To.Revision, objs, lines)
	if mode == checkDigest && next.digest != d.To.Digest {
		return nil, &DigestError{Want: d.To.Digest, Got: next.digest, Rebuilt: true}
	}
	return next, nil
}

// ParseDelta decodes a delta sent as JSON; unknown fields are errors.
func ParseDelta(b []byte) (*Delta, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Delta
	if err := dec.Decode(&d); err != nil {
		return nil, &FormatError{Msg: fmt.Sprintf("parse delta: %v", err)}
	}
	if dec.More() {
		return nil, &FormatError{Msg: "parse delta: data after the delta"}
	}
	return &d, nil
}
