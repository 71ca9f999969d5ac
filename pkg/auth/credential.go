package auth

import (
	"net/http"
	"net/textproto"
)

// Header names carrying credentials.
const (
	HeaderAuthorization = "Authorization"
	HeaderAPIKey        = "X-Api-Key"
)

// MaxCredentialBytes bounds a credential's length; longer values are
// rejected before any parsing, hashing or lookup.
const MaxCredentialBytes = 16 << 10

// CredentialKind says what a request presented.
type CredentialKind uint8

// The credential kinds.
const (
	// CredentialNone: nothing was presented.
	CredentialNone CredentialKind = iota
	// CredentialAPIKey: a stoa API key (X-Api-Key, or a Bearer value with
	// the stoa_sk_ prefix).
	CredentialAPIKey
	// CredentialBearerToken: any other Bearer value, expected to be a JWT.
	CredentialBearerToken
)

// String names the kind for logs.
func (k CredentialKind) String() string {
	switch k {
	case CredentialAPIKey:
		return "api_key"
	case CredentialBearerToken:
		return "bearer_token"
	}
	return "none"
}

// ExtractCredential finds the credential in the raw values of the
// Authorization and X-Api-Key headers (nil or empty when absent). It
// returns a sub-slice of its input and does not allocate, so it can work on
// fasthttp's header bytes directly.
//
// Rules: values are trimmed of spaces and tabs; X-Api-Key carries an API
// key; Authorization must use the Bearer scheme (any case) followed by a
// token68 value, which is an API key when it starts with "stoa_sk_" and a
// token otherwise. A Bearer credential together with X-Api-Key is
// ErrAmbiguousCredential; another scheme next to X-Api-Key is ignored (it
// may be meant for the upstream), alone it is ErrUnsupportedScheme.
//
// The caller must refuse requests that repeat either header (fasthttp's
// Peek returns only the first); ExtractHTTP does that for net/http.
func ExtractCredential(authorization, apiKey []byte) (CredentialKind, []byte, error) {
	authorization = trimOWS(authorization)
	apiKey = trimOWS(apiKey)
	if len(authorization) > MaxCredentialBytes+len("Bearer ") || len(apiKey) > MaxCredentialBytes {
		return CredentialNone, nil, ErrMalformedCredential
	}
	var bearer []byte
	if len(authorization) > 0 {
		v, ok, err := parseBearer(authorization)
		if err != nil {
			return CredentialNone, nil, err
		}
		if !ok {
			if len(apiKey) == 0 {
				return CredentialNone, nil, ErrUnsupportedScheme
			}
		} else {
			bearer = v
		}
	}
	switch {
	case len(apiKey) > 0 && bearer != nil:
		return CredentialNone, nil, ErrAmbiguousCredential
	case len(apiKey) > 0:
		if !isToken68(apiKey) {
			return CredentialNone, nil, ErrMalformedCredential
		}
		return CredentialAPIKey, apiKey, nil
	case bearer != nil:
		if hasKeyPrefix(bearer) {
			return CredentialAPIKey, bearer, nil
		}
		return CredentialBearerToken, bearer, nil
	}
	return CredentialNone, nil, ErrNoCredential
}

// ExtractHTTP is ExtractCredential for net/http headers. It also rejects a
// request that repeats either header (ErrAmbiguousCredential), since
// intermediaries may disagree on which copy counts.
func ExtractHTTP(h http.Header) (CredentialKind, []byte, error) {
	az := h[textproto.CanonicalMIMEHeaderKey(HeaderAuthorization)]
	ak := h[textproto.CanonicalMIMEHeaderKey(HeaderAPIKey)]
	if len(az) > 1 || len(ak) > 1 {
		return CredentialNone, nil, ErrAmbiguousCredential
	}
	var azb, akb []byte
	if len(az) == 1 {
		azb = []byte(az[0])
	}
	if len(ak) == 1 {
		akb = []byte(ak[0])
	}
	return ExtractCredential(azb, akb)
}

// parseBearer splits "Bearer <token68>". ok is false when the scheme is not
// Bearer; err is set when it is Bearer but the value is unusable.
func parseBearer(v []byte) (token []byte, ok bool, err error) {
	const scheme = "bearer"
	if len(v) < len(scheme) || !equalFoldASCII(v[:len(scheme)], scheme) {
		return nil, false, nil
	}
	rest := v[len(scheme):]
	if len(rest) == 0 {
		return nil, true, ErrMalformedCredential
	}
	if rest[0] != ' ' {
		// "Bearerx ..." is some other scheme.
		return nil, false, nil
	}
	rest = trimOWS(rest)
	if len(rest) == 0 || len(rest) > MaxCredentialBytes || !isToken68(rest) {
		return nil, true, ErrMalformedCredential
	}
	return rest, true, nil
}

// isToken68 reports whether b is token68 (RFC 9110 section 11.2):
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(b []byte) bool {
	i := 0
	for ; i < len(b); i++ {
		if !token68Char[b[i]] {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(b); i++ {
		if b[i] != '=' {
			return false
		}
	}
	return true
}

var token68Char = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFoldASCII compares b with the lower-case ASCII string s, ignoring
// the case of b.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
