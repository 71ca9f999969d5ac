package auth

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Authenticator turns a request's credential headers into a Principal. It
// holds the current KeyIndex and Resolver, each replaced atomically when
// keys or tenants change; in-flight requests finish on the snapshot they
// started with. The zero value accepts no credential.
type Authenticator struct {
	keys     atomic.Pointer[KeyIndex]
	resolver atomic.Pointer[Resolver]
}

// SetKeys installs a new key index.
func (a *Authenticator) SetKeys(ix *KeyIndex) { a.keys.Store(ix) }

// Keys returns the current key index (nil when none is installed).
func (a *Authenticator) Keys() *KeyIndex { return a.keys.Load() }

// SetResolver installs a new token resolver.
func (a *Authenticator) SetResolver(r *Resolver) { a.resolver.Store(r) }

// Resolver returns the current token resolver (nil when none is installed).
func (a *Authenticator) Resolver() *Resolver { return a.resolver.Load() }

// Authenticate extracts the credential from the raw Authorization and
// X-Api-Key header values (see ExtractCredential) and verifies it. API keys
// and cached tokens are verified without allocating. Errors map to client
// answers through HTTPStatus and Challenge and to log labels through
// Reason; the error text itself is safe to log.
func (a *Authenticator) Authenticate(ctx context.Context, authorization, apiKey []byte, now time.Time) (*Principal, error) {
	// The common case first: an X-Api-Key this index verified before is
	// that key exactly, so it is well-formed and ExtractCredential would
	// take it as it is.
	if len(authorization) == 0 {
		ix := a.keys.Load()
		if e := ix.verifiedEntry(trimOWS(apiKey)); e != nil {
			if _, err := e.live(now); err != nil {
				return nil, err
			}
			return &e.principal, nil
		}
	}
	kind, cred, err := ExtractCredential(authorization, apiKey)
	if err != nil {
		return nil, err
	}
	return a.AuthenticateCredential(ctx, kind, cred, now)
}

// AuthenticateCredential verifies an already extracted credential.
func (a *Authenticator) AuthenticateCredential(ctx context.Context, kind CredentialKind, cred []byte, now time.Time) (*Principal, error) {
	switch kind {
	case CredentialAPIKey:
		return a.keys.Load().Authenticate(cred, now)
	case CredentialBearerToken:
		r := a.resolver.Load()
		if r == nil {
			return nil, fmt.Errorf("%w: no issuer is trusted", ErrTokenUnknownIssuer)
		}
		return r.Authenticate(ctx, cred, now)
	}
	return nil, ErrNoCredential
}
