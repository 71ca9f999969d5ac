package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const maxKeysPerSet = 100

// verifyKey is one usable public key from a JWKS.
type verifyKey struct {
	kid string
	// alg is the JWK's alg, or "" when the JWK does not name one; then any
	// alg of family is accepted.
	alg    jose.SignatureAlgorithm
	family []jose.SignatureAlgorithm
	key    any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

func (k *verifyKey) accepts(alg jose.SignatureAlgorithm) bool {
	if k.alg != "" {
		return alg == k.alg
	}
	for _, a := range k.family {
		if a == alg {
			return true
		}
	}
	return false
}

var (
	familyRSA   = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
	familyP256  = []jose.SignatureAlgorithm{jose.ES256}
	familyP384  = []jose.SignatureAlgorithm{jose.ES384}
	familyP521  = []jose.SignatureAlgorithm{jose.ES512}
	familyEdDSA = []jose.SignatureAlgorithm{jose.EdDSA}
)

// newVerifyKey turns a JWK into a verification key, or explains why it is
// not usable: not for signatures, symmetric, carrying private material,
// RSA under 2048 bits, or an alg that does not fit the key type.
func newVerifyKey(j *jose.JSONWebKey) (*verifyKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q", j.Use)
	}
	if !j.IsPublic() {
		return nil, errors.New("not a public key (symmetric or private material)")
	}
	k := &verifyKey{kid: j.KeyID}
	switch pk := j.Key.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < 2048 {
			return nil, fmt.Errorf("rsa key of %d bits", pk.N.BitLen())
		}
		k.family = familyRSA
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256():
			k.family = familyP256
		case elliptic.P384():
			k.family = familyP384
		case elliptic.P521():
			k.family = familyP521
		default:
			return nil, errors.New("unsupported curve")
		}
	case ed25519.PublicKey:
		k.family = familyEdDSA
	default:
		return nil, fmt.Errorf("unsupported key type %T", j.Key)
	}
	k.key = j.Key
	if j.Algorithm != "" {
		k.alg = jose.SignatureAlgorithm(j.Algorithm)
		if !k.acceptsFamily(k.alg) {
			return nil, fmt.Errorf("alg %q does not fit the key", j.Algorithm)
		}
	}
	return k, nil
}

func (k *verifyKey) acceptsFamily(alg jose.SignatureAlgorithm) bool {
	for _, a := range k.family {
		if a == alg {
			return true
		}
	}
	return false
}

type keySnapshot struct {
	byKID     map[string][]*verifyKey
	all       []*verifyKey
	fetchedAt time.Time
}

func (s *keySnapshot) lookup(kid string) []*verifyKey {
	if kid == "" {
		return s.all
	}
	return s.byKID[kid]
}

func parseKeySet(body []byte, now time.Time, log *slog.Logger, issuer string) (*keySnapshot, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	s := &keySnapshot{byKID: map[string][]*verifyKey{}, fetchedAt: now}
	// Keys are parsed one by one so that one key of a type we do not know
	// does not break the whole set (RFC 7517 section 5).
	for i, raw := range doc.Keys {
		if i == maxKeysPerSet {
			log.Warn("jwks has too many keys; ignoring the rest", "issuer", issuer, "keys", len(doc.Keys))
			break
		}
		var j jose.JSONWebKey
		if err := j.UnmarshalJSON(raw); err != nil {
			log.Info("skipping unparseable jwk", "issuer", issuer, "index", i, "error", err)
			continue
		}
		k, err := newVerifyKey(&j)
		if err != nil {
			log.Info("skipping jwk", "issuer", issuer, "kid", safeLabel(j.KeyID), "reason", err.Error())
			continue
		}
		s.all = append(s.all, k)
		s.byKID[k.kid] = append(s.byKID[k.kid], k)
	}
	if len(s.all) == 0 {
		return nil, errors.New("jwks has no usable signing keys")
	}
	return s, nil
}
