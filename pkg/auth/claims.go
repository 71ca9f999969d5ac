package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultAlgorithms returns the signature allow-list used when an identity
// names none: asymmetric algorithms only.
func DefaultAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}
}

// supportedAlgorithms are every alg this package can verify. "none" and the
// HMAC algorithms are deliberately absent and can never be configured: a
// gateway that accepted HS256 could be fooled into using an RSA public key
// as the HMAC secret.
var supportedAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

func supportedAlgorithm(a string) bool {
	for _, s := range supportedAlgorithms {
		if string(s) == a {
			return true
		}
	}
	return false
}

// tokenClaims are the registered claims of a token, decoded once.
type tokenClaims struct {
	iss, sub, clientID string
	aud                []string
	exp, nbf, iat      time.Time
	scopes             []string
	all                map[string]any
}

// parseClaims decodes a JWT claims set. Registered claims of the wrong JSON
// type make the token malformed rather than being ignored.
func parseClaims(payload []byte) (*tokenClaims, error) {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var all map[string]any
	if err := d.Decode(&all); err != nil || all == nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrTokenMalformed)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: trailing data after claims", ErrTokenMalformed)
	}
	c := &tokenClaims{all: all}
	var err error
	if c.iss, err = stringClaim(all, "iss"); err != nil {
		return nil, err
	}
	if c.sub, err = stringClaim(all, "sub"); err != nil {
		return nil, err
	}
	if c.clientID, err = stringClaim(all, "azp"); err != nil {
		return nil, err
	}
	if c.clientID == "" {
		if c.clientID, err = stringClaim(all, "client_id"); err != nil {
			return nil, err
		}
	}
	if c.aud, err = stringsClaim(all, "aud"); err != nil {
		return nil, err
	}
	for _, n := range []struct {
		name string
		t    *time.Time
	}{{"exp", &c.exp}, {"nbf", &c.nbf}, {"iat", &c.iat}} {
		if *n.t, err = dateClaim(all, n.name); err != nil {
			return nil, err
		}
	}
	scope, err := stringClaim(all, "scope")
	if err != nil {
		return nil, err
	}
	c.scopes = strings.Fields(scope)
	if v, ok := all["scp"]; ok {
		switch v := v.(type) {
		case string:
			c.scopes = append(c.scopes, strings.Fields(v)...)
		default:
			scp, err := stringsClaim(all, "scp")
			if err != nil {
				return nil, err
			}
			c.scopes = append(c.scopes, scp...)
		}
	}
	return c, nil
}

func stringClaim(all map[string]any, name string) (string, error) {
	v, ok := all[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: claim %s is not a string", ErrTokenMalformed, name)
	}
	return s, nil
}

// stringsClaim reads a claim that is a string or an array of strings.
func stringsClaim(all map[string]any, name string) ([]string, error) {
	v, ok := all[name]
	if !ok || v == nil {
		return nil, nil
	}
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: claim %s has a non-string element", ErrTokenMalformed, name)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: claim %s is not a string or array", ErrTokenMalformed, name)
}

// dateClaim reads a NumericDate (seconds since the epoch, possibly with a
// fraction). Absent claims give the zero time.
func dateClaim(all map[string]any, name string) (time.Time, error) {
	v, ok := all[name]
	if !ok || v == nil {
		return time.Time{}, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: claim %s is not a number", ErrTokenMalformed, name)
	}
	f, err := n.Float64()
	// Bound to years 1970..~2286 so the conversion cannot overflow.
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1e10 {
		return time.Time{}, fmt.Errorf("%w: claim %s is out of range", ErrTokenMalformed, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// checkTimes validates exp (required, strictly in the future, no skew so a
// token is never accepted after its exp) and nbf/iat (with skew).
func (c *tokenClaims) checkTimes(now time.Time, skew time.Duration) error {
	if c.exp.IsZero() {
		return fmt.Errorf("%w: no exp claim", ErrTokenExpired)
	}
	if !now.Before(c.exp) {
		return ErrTokenExpired
	}
	if !c.nbf.IsZero() && now.Add(skew).Before(c.nbf) {
		return fmt.Errorf("%w: nbf in the future", ErrTokenNotYetValid)
	}
	if !c.iat.IsZero() && now.Add(skew).Before(c.iat) {
		return fmt.Errorf("%w: iat in the future", ErrTokenNotYetValid)
	}
	return nil
}

func (c *tokenClaims) hasAudience(auds []string) bool {
	for _, want := range auds {
		for _, have := range c.aud {
			if have == want {
				return true
			}
		}
	}
	return false
}

// safeLabel shortens and quotes attacker-supplied header values (kid, alg,
// iss) for error messages.
func safeLabel(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}
