package auth

import (
	"errors"
	"net/http"
	"strings"
)

// Credential errors. They are all answered like an authentication failure;
// the distinction exists for logs and metrics only.
var (
	// ErrNoCredential means the request carried no credential at all.
	ErrNoCredential = errors.New("no credential")
	// ErrMalformedCredential means a credential header could not be parsed.
	ErrMalformedCredential = errors.New("malformed credential")
	// ErrAmbiguousCredential means the request carried more than one
	// credential (RFC 6750 section 2 forbids that).
	ErrAmbiguousCredential = errors.New("more than one credential")
	// ErrUnsupportedScheme means the Authorization header used a scheme
	// other than Bearer.
	ErrUnsupportedScheme = errors.New("unsupported authorization scheme")
)

// API key errors.
var (
	// ErrKeyMalformed means the value is not a well-formed stoa API key
	// (wrong prefix, length, alphabet or checksum).
	ErrKeyMalformed = errors.New("malformed api key")
	// ErrKeyUnknown means no key has the presented public id.
	ErrKeyUnknown = errors.New("unknown api key")
	// ErrKeyMismatch means a key with the presented id exists but the
	// secret part does not match its hash.
	ErrKeyMismatch = errors.New("api key secret mismatch")
	// ErrKeyRevoked means the key was revoked.
	ErrKeyRevoked = errors.New("api key revoked")
	// ErrKeyExpired means the key passed its expiry time.
	ErrKeyExpired = errors.New("api key expired")
	// ErrKeyRotated means the key was replaced by a newer one and its grace
	// period has ended.
	ErrKeyRotated = errors.New("api key rotated out")
)

// Token errors.
var (
	// ErrTokenMalformed means the token is not a parseable compact JWS with
	// a JSON claims object.
	ErrTokenMalformed = errors.New("malformed token")
	// ErrTokenAlgorithm means the token's alg is not allowed (none, HMAC,
	// not in the allow-list, or not the algorithm of the key).
	ErrTokenAlgorithm = errors.New("token algorithm not allowed")
	// ErrTokenUnknownIssuer means no tenant trusts the token's issuer.
	ErrTokenUnknownIssuer = errors.New("token issuer not trusted")
	// ErrTokenUnknownKey means the issuer's JWKS has no key with the
	// token's kid, even after a (rate-limited) refresh.
	ErrTokenUnknownKey = errors.New("token signing key unknown")
	// ErrTokenSignature means the signature did not verify.
	ErrTokenSignature = errors.New("token signature invalid")
	// ErrTokenExpired means exp is missing or not in the future.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenNotYetValid means nbf or iat lies in the future (beyond the
	// allowed clock skew).
	ErrTokenNotYetValid = errors.New("token not yet valid")
	// ErrTokenAudience means aud is missing or names no accepted audience.
	ErrTokenAudience = errors.New("token audience not accepted")
	// ErrTokenIssuer means the token's issuer is not the one required.
	ErrTokenIssuer = errors.New("token issuer not accepted")
	// ErrTokenNoTenant means a valid token matched no tenant (and is not an
	// admin token).
	ErrTokenNoTenant = errors.New("token matches no tenant")
	// ErrTokenAmbiguousTenant means a token matched more than one tenant;
	// it is refused rather than guessed.
	ErrTokenAmbiguousTenant = errors.New("token matches more than one tenant")
	// ErrInsufficientScope means the token lacks a required scope.
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrMethodNotAllowed means the credential kind (API key or token) is
	// not the one the resource requires.
	ErrMethodNotAllowed = errors.New("credential method not accepted")
	// ErrKeySetUnavailable means the issuer's JWKS has never been fetched
	// successfully, so no token of that issuer can be verified. It is the
	// only error answered with 503.
	ErrKeySetUnavailable = errors.New("issuer key set unavailable")
)

var reasons = []struct {
	err    error
	reason string
}{
	{ErrNoCredential, "no_credential"},
	{ErrMalformedCredential, "malformed_credential"},
	{ErrAmbiguousCredential, "ambiguous_credential"},
	{ErrUnsupportedScheme, "unsupported_scheme"},
	{ErrKeyMalformed, "key_malformed"},
	{ErrKeyUnknown, "key_unknown"},
	{ErrKeyMismatch, "key_mismatch"},
	{ErrKeyRevoked, "key_revoked"},
	{ErrKeyExpired, "key_expired"},
	{ErrKeyRotated, "key_rotated"},
	{ErrTokenMalformed, "token_malformed"},
	{ErrTokenAlgorithm, "token_algorithm"},
	{ErrTokenUnknownIssuer, "token_unknown_issuer"},
	{ErrTokenUnknownKey, "token_unknown_kid"},
	{ErrTokenSignature, "token_signature"},
	{ErrTokenExpired, "token_expired"},
	{ErrTokenNotYetValid, "token_not_yet_valid"},
	{ErrTokenAudience, "token_audience"},
	{ErrTokenIssuer, "token_issuer"},
	{ErrTokenNoTenant, "token_no_tenant"},
	{ErrTokenAmbiguousTenant, "token_ambiguous_tenant"},
	{ErrInsufficientScope, "insufficient_scope"},
	{ErrMethodNotAllowed, "method_not_allowed"},
	{ErrKeySetUnavailable, "keyset_unavailable"},
}

// Reason returns a short stable label for err, suitable for logs and metric
// labels ("key_revoked", "token_expired", …), or "error" for errors not
// produced by this package. It never contains caller-supplied data.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "error"
}

// HTTPStatus maps an authentication error to the status a client sees:
// 400 for unusable request syntax (malformed header, two credentials),
// 403 for a valid credential that lacks a scope or method, 503 when an
// issuer's keys could not be fetched at all, and 401 for everything else —
// unknown, revoked and expired keys and every token failure look the same to
// the client.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrMalformedCredential), errors.Is(err, ErrAmbiguousCredential):
		return http.StatusBadRequest
	case errors.Is(err, ErrInsufficientScope), errors.Is(err, ErrMethodNotAllowed):
		return http.StatusForbidden
	case errors.Is(err, ErrKeySetUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// Challenge returns the WWW-Authenticate value for a failed request
// (RFC 6750 section 3). It names only the RFC error code, never which check
// failed. resourceMetadata, if not empty, is the RFC 9728 protected resource
// metadata URL that MCP clients use to find the authorization server; it
// must be a URL without quotes or backslashes.
func Challenge(err error, resourceMetadata string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	if resourceMetadata != "" {
		b.WriteString(` resource_metadata="`)
		b.WriteString(resourceMetadata)
		b.WriteString(`"`)
		sep = ", "
	}
	code := ""
	switch {
	case err == nil, errors.Is(err, ErrNoCredential), errors.Is(err, ErrKeySetUnavailable):
		// RFC 6750 3.1: no error code when no credential was sent. A key set
		// outage is not the client's fault either.
	case errors.Is(err, ErrMalformedCredential), errors.Is(err, ErrAmbiguousCredential):
		code = "invalid_request"
	case errors.Is(err, ErrInsufficientScope), errors.Is(err, ErrMethodNotAllowed):
		code = "insufficient_scope"
	default:
		code = "invalid_token"
	}
	if code != "" {
		b.WriteString(sep)
		b.WriteString(`error="`)
		b.WriteString(code)
		b.WriteString(`"`)
	}
	return b.String()
}
