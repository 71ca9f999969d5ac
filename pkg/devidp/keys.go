package devidp

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// signingKey is one RSA key; it implements op.SigningKey (private half)
// and, through publicKey, op.Key.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
	// retireAt is when a rotated-out key leaves the JWKS; zero for the
	// current key.
	retireAt time.Time
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// keyRing holds the current signing key and the retired keys still
// published for verification.
type keyRing struct {
	mu      sync.Mutex
	current *signingKey
	retired []*signingKey
}

func newSigningKey() (*signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &signingKey{id: randomHex(8), key: k}, nil
}

func (r *keyRing) signing() *signingKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// published returns the keys in the JWKS at now: the current key first,
// then retired keys whose retention has not run out.
func (r *keyRing) published(now time.Time) []op.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := r.retired[:0]
	for _, k := range r.retired {
		if now.Before(k.retireAt) {
			keep = append(keep, k)
		}
	}
	r.retired = keep
	out := []op.Key{publicKey{r.current}}
	for _, k := range r.retired {
		out = append(out, publicKey{k})
	}
	return out
}

// rotate makes next the signing key and keeps the old one published until
// now+retention.
func (r *keyRing) rotate(next *signingKey, now time.Time, retention time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.current
	old.retireAt = now.Add(retention)
	r.retired = append(r.retired, old)
	r.current = next
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// randomToken is an opaque bearer secret (256 bits).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
