package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Sign signs b the way `cosign sign-blob --key` does: an ECDSA signature
// (ASN.1 DER) over the SHA-256 of b, returned base64-encoded, which is
// what a cosign .sig file holds.
func Sign(b []byte, s signature.Signer) ([]byte, error) {
	d := sha256.Sum256(b)
	der, err := s.SignMessage(bytes.NewReader(b), options.WithDigest(d[:]))
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(der)))
	base64.StdEncoding.Encode(out, der)
	return out, nil
}

// SignBundle is Sign(b.Bytes(), s) with the digest b already has: the
// bundle is not hashed again, nor joined unless the signer reads it.
func SignBundle(b *Bundle, s signature.Signer) ([]byte, error) {
	der, err := s.SignMessage(&lazyReader{b: b}, options.WithDigest(b.digest[:]))
	if err != nil {
		return nil, fmt.Errorf("sign bundle: %w", err)
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(der)))
	base64.StdEncoding.Encode(out, der)
	return out, nil
}

// lazyReader reads a bundle's bytes, joining them on the first Read.
type lazyReader struct {
	b *Bundle
	r *bytes.Reader
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil {
		l.r = bytes.NewReader(l.b.Bytes())
	}
	return l.r.Read(p)
}

// Verify checks sig, a cosign signature (base64, surrounding whitespace
// ignored), over b. A failure is a *SignatureError.
func Verify(b, sig []byte, v signature.Verifier) error {
	return verifyDigest(sha256.Sum256(b), sig, v)
}

// verifyDigest checks sig against a precomputed digest, so a bundle is
// hashed once for both its digest and its signature.
func verifyDigest(d Digest, sig []byte, v signature.Verifier) error {
	if v == nil {
		return &SignatureError{Err: errors.New("no public key to verify with")}
	}
	sig = bytes.TrimSpace(sig)
	if len(sig) == 0 {
		return &SignatureError{Err: errors.New("the signature is empty")}
	}
	der := make([]byte, base64.StdEncoding.DecodedLen(len(sig)))
	n, err := base64.StdEncoding.Decode(der, sig)
	if err != nil {
		return &SignatureError{Err: fmt.Errorf("the signature is not base64: %w", err)}
	}
	if err := v.VerifySignature(bytes.NewReader(der[:n]), nil, options.WithDigest(d[:])); err != nil {
		return &SignatureError{Err: err}
	}
	return nil
}

// OpenOptions say what a data plane expects of the next bundle.
type OpenOptions struct {
	// Digest, when set, is the digest the bundle was announced with.
	Digest Digest
	// Serving is the bundle served now, nil if none: an older revision,
	// or the same revision with other content, is refused.
	Serving *Bundle
}

// Open is how a data plane accepts a full bundle: it checks the announced
// digest (*DigestError) and the signature (*SignatureError) before the
// bytes are parsed at all, then parses them strictly (*FormatError) and
// checks the revision against the one served (*RevisionError). Receiving
// the bundle being served again is not an error; compare digests to skip
// the reload.
func Open(raw, sig []byte, v signature.Verifier, opts OpenOptions) (*Bundle, error) {
	d := Digest(sha256.Sum256(raw))
	if !opts.Digest.IsZero() && d != opts.Digest {
		return nil, &DigestError{Want: opts.Digest, Got: d}
	}
	if err := verifyDigest(d, sig, v); err != nil {
		return nil, err
	}
	b, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if err := CheckRevision(opts.Serving, b); err != nil {
		return nil, err
	}
	return b, nil
}

// OpenDelta is how a data plane accepts a delta: it rebuilds the next
// revision from the held one (*BaseError if the delta was made against
// another, *DigestError if the rebuilt bytes are not the announced ones),
// verifies d.Signature over the rebuilt bytes (*SignatureError) and checks
// the revision (*RevisionError).
func OpenDelta(d *Delta, held *Bundle, v signature.Verifier) (*Bundle, error) {
	if held == nil {
		return nil, &BaseError{Want: d.From}
	}
	next, err := d.Apply(held)
	if err != nil {
		return nil, err
	}
	if err := verifyDigest(next.digest, d.Signature, v); err != nil {
		return nil, err
	}
	if err := CheckRevision(held, next); err != nil {
		return nil, err
	}
	return next, nil
}

// CheckRevision refuses to move from serving to next if next is older, or
// the same revision with other content. A nil serving accepts anything.
func CheckRevision(serving, next *Bundle) error {
	if serving == nil {
		return nil
	}
	if next.rev < serving.rev || (next.rev == serving.rev && next.digest != serving.digest) {
		return &RevisionError{Serving: serving.rev, Got: next.rev, ServingDigest: serving.digest, GotDigest: next.digest}
	}
	return nil
}
