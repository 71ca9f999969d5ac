package bundle

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is; each refusal has its own type carrying details.
var (
	// ErrSignature: the signature does not verify with the trusted key.
	ErrSignature = errors.New("bad signature")
	// ErrDigest: the bytes are not the ones announced or rebuilt.
	ErrDigest = errors.New("digest mismatch")
	// ErrStale: the revision is older than the one being served.
	ErrStale = errors.New("stale revision")
	// ErrConflict: the revision is the one being served, with other content.
	ErrConflict = errors.New("revision conflict")
	// ErrBase: a delta was made against another revision than the one held.
	ErrBase = errors.New("delta base mismatch")
	// ErrMalformed: the bytes are not a canonical bundle or delta.
	ErrMalformed = errors.New("malformed bundle")
)

// Reason names the refusal behind err for an event or a metric label:
// "signature", "digest", "stale", "conflict", "base", "malformed", or
// "" for other errors (I/O, for example).
func Reason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{ErrSignature, "signature"}, {ErrDigest, "digest"}, {ErrStale, "stale"},
		{ErrConflict, "conflict"}, {ErrBase, "base"}, {ErrMalformed, "malformed"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return ""
}

// SignatureError is a signature that does not verify: the bytes were
// changed after signing, or signed with another key.
type SignatureError struct{ Err error }

func (e *SignatureError) Error() string {
	return fmt.Sprintf("verify signature: %v", e.Err)
}

// Unwrap returns the verifier's error.
func (e *SignatureError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrSignature) true.
func (e *SignatureError) Is(target error) bool { return target == ErrSignature }

// Hint says how to fix it.
func (e *SignatureError) Hint() string {
	return "the bundle was changed after signing, or signed with another key: check --key names the signer's public key (cosign.pub) and --signature the bundle's own .sig"
}

// DigestError is content whose SHA-256 is not the one expected.
type DigestError struct {
	Want, Got Digest
	// Rebuilt is set when the bytes were rebuilt from a delta.
	Rebuilt bool
}

func (e *DigestError) Error() string {
	what := "bundle"
	if e.Rebuilt {
		what = "bundle rebuilt from the delta"
	}
	return fmt.Sprintf("check digest: %s is %s, want %s", what, e.Got, e.Want)
}

// Is makes errors.Is(err, ErrDigest) true.
func (e *DigestError) Is(target error) bool { return target == ErrDigest }

// Hint says how to fix it.
func (e *DigestError) Hint() string {
	if e.Rebuilt {
		return "the delta or the held revision is damaged: fetch the full bundle"
	}
	return "the file is not the bundle that was announced: fetch it again, or check which digest you expect"
}

// RevisionError is a bundle whose revision a data plane must not move to:
// older than the one it serves (ErrStale), or the same revision with
// other content (ErrConflict), which only a replayed or forged bundle has.
type RevisionError struct {
	Serving, Got             int64
	ServingDigest, GotDigest Digest
}

func (e *RevisionError) Error() string {
	if e.Got == e.Serving {
		return fmt.Sprintf("check revision: revision %d (%s) differs from the served revision %d (%s)", e.Got, e.GotDigest, e.Serving, e.ServingDigest)
	}
	return fmt.Sprintf("check revision: revision %d is older than the served revision %d", e.Got, e.Serving)
}

// Is makes errors.Is true for ErrStale or ErrConflict.
func (e *RevisionError) Is(target error) bool {
	if e.Got == e.Serving {
		return target == ErrConflict
	}
	return target == ErrStale
}

// Hint says what it means.
func (e *RevisionError) Hint() string {
	return "revisions only move forward: a control plane signs each revision once, so this bundle is a replay or comes from another control plane"
}

// BaseError is a delta made against another revision than the one held.
type BaseError struct{ Want, Have Version }

func (e *BaseError) Error() string {
	return fmt.Sprintf("apply delta: it applies to revision %d (%s), but revision %d (%s) is held", e.Want.Revision, e.Want.Digest, e.Have.Revision, e.Have.Digest)
}

// Is makes errors.Is(err, ErrBase) true.
func (e *BaseError) Is(target error) bool { return target == ErrBase }

// Hint says how to recover.
func (e *BaseError) Hint() string {
	return "ask for a delta from the held revision, or fetch the full bundle"
}

// FormatError is input that is not a canonical bundle (or delta). Line
// counts from 1; object lines start at line 2.
type FormatError struct {
	Line int
	Msg  string
}

func (e *FormatError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("parse bundle: line %d: %s", e.Line, e.Msg)
	}
	return "parse bundle: " + e.Msg
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *FormatError) Is(target error) bool { return target == ErrMalformed }

// Hint says how to fix it.
func (e *FormatError) Hint() string {
	return "bundles are written by stoa bundle build and must not be edited: rebuild and re-sign it"
}

func formatErr(line int, format string, args ...any) *FormatError {
	return &FormatError{Line: line, Msg: fmt.Sprintf(format, args...)}
}
