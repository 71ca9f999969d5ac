package auth

import (
	"encoding/json"
	"strings"
	"time"
)

// Method is how a caller authenticated.
type Method uint8

// The methods. MethodAny in a Requirement accepts both.
const (
	MethodAny Method = iota
	MethodAPIKey
	MethodJWT
)

// String names the method for logs.
func (m Method) String() string {
	switch m {
	case MethodAPIKey:
		return "api_key"
	case MethodJWT:
		return "jwt"
	}
	return "any"
}

// Principal is an authenticated caller. Principals are shared between
// requests (cached tokens, key index entries): callers must treat them as
// read-only.
type Principal struct {
	// Method is how the caller authenticated.
	Method Method
	// Tenant the caller belongs to; empty only for admins whose token
	// matches no tenant.
	Tenant string
	// Admin is true for platform admins (see AdminRule), who may act in
	// every tenant.
	Admin bool
	// Consumer is the API key's consumer (empty for tokens; the daemon maps
	// a token's Subject or ClientID to a consumer).
	Consumer string
	// KeyID is the API key's public id (empty for tokens).
	KeyID string

	// The fields below are set for tokens only.

	// Issuer is the token's iss.
	Issuer string
	// Subject is the token's sub.
	Subject string
	// ClientID is azp, or client_id when azp is absent.
	ClientID string
	// Audiences are the token's aud values.
	Audiences []string
	// Scopes are the union of the space-separated "scope" claim and the
	// "scp" claim (array or string).
	Scopes []string
	// Algorithm is the alg that signed the token.
	Algorithm string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time

	claims map[string]any
}

// CanAccess reports whether the caller may act in tenant.
func (p *Principal) CanAccess(tenant string) bool {
	return p.Admin || (p.Tenant != "" && p.Tenant == tenant)
}

// Claim returns a token claim by name or dotted path
// ("realm_access.roles"); see ClaimMatch for how dots are resolved. JSON
// numbers come back as json.Number. API key principals have no claims.
func (p *Principal) Claim(path string) (any, bool) {
	return lookupClaim(p.claims, path)
}

// Claims returns the token's whole claims set as it was decoded (JSON
// numbers as json.Number), shared with every request that presents the
// same token: callers must not modify it. API key principals have none.
func (p *Principal) Claims() map[string]any { return p.claims }

// HasScope reports whether the token carries scope s.
func (p *Principal) HasScope(s string) bool {
	for _, have := range p.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// HasAudience reports whether the token's aud contains any of auds.
func (p *Principal) HasAudience(auds []string) bool {
	for _, a := range auds {
		for _, have := range p.Audiences {
			if a == have {
				return true
			}
		}
	}
	return false
}

// Requirement is what one resource (a Tool's auth block) demands of a
// caller beyond being authenticated for the tenant. Zero fields demand
// nothing.
type Requirement struct {
	// Method restricts the credential kind (ToolAuth.Type apiKey vs
	// jwt/oauth2).
	Method Method
	// Issuer, if set, must equal the token's iss.
	Issuer string
	// Audiences, if set, must contain one of the token's aud values.
	Audiences []string
	// Scopes must all be carried by the token. API keys carry no scopes, so
	// a requirement with scopes refuses them.
	Scopes []string
}

// Check reports whether p meets req: nil, ErrMethodNotAllowed,
// ErrTokenIssuer, ErrTokenAudience or ErrInsufficientScope. It does not
// allocate.
func (p *Principal) Check(req *Requirement) error {
	if req == nil {
		return nil
	}
	if req.Method != MethodAny && req.Method != p.Method {
		return ErrMethodNotAllowed
	}
	if req.Issuer != "" && (p.Method != MethodJWT || p.Issuer != req.Issuer) {
		return ErrTokenIssuer
	}
	if len(req.Audiences) > 0 && (p.Method != MethodJWT || !p.HasAudience(req.Audiences)) {
		return ErrTokenAudience
	}
	for _, s := range req.Scopes {
		if !p.HasScope(s) {
			return ErrInsufficientScope
		}
	}
	return nil
}

// ClaimMatch matches one token claim against a value. It mirrors
// spec.ClaimMatch so this package stands alone.
type ClaimMatch struct {
	// Claim is a claim name or a dotted path into nested objects
	// ("realm_access.roles"). A claim whose name itself contains dots
	// ("https://example.com/roles") is found too: at every level the
	// longest key present wins.
	Claim string
	// Value must equal a string claim or be contained in an array claim.
	// Numbers and booleans compare by their JSON text ("42", "true").
	Value string
}

// Matches reports whether p's claims satisfy m.
func (p *Principal) Matches(m ClaimMatch) bool {
	v, ok := lookupClaim(p.claims, m.Claim)
	return ok && claimValueMatches(v, m.Value)
}

func claimValueMatches(v any, want string) bool {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if scalarEquals(e, want) {
				return true
			}
		}
		return false
	default:
		return scalarEquals(v, want)
	}
}

func scalarEquals(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case json.Number:
		return string(v) == want
	case bool:
		return (v && want == "true") || (!v && want == "false")
	}
	return false
}

// lookupClaim resolves path in claims. At each level it tries the whole
// remaining path as a key, then splits at the last dot, then the one
// before, and so on, so literal keys with dots beat nesting.
func lookupClaim(claims map[string]any, path string) (any, bool) {
	if claims == nil || path == "" {
		return nil, false
	}
	if v, ok := claims[path]; ok {
		return v, true
	}
	for i := strings.LastIndexByte(path, '.'); i > 0; i = strings.LastIndexByte(path[:i], '.') {
		v, ok := claims[path[:i]]
		if !ok {
			continue
		}
		if m, ok := v.(map[string]any); ok {
			if r, ok := lookupClaim(m, path[i+1:]); ok {
				return r, true
			}
		}
	}
	return nil, false
}
