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
	return a.AuthenticateGrant(ctx, authorization, apiKey, now, nil)
}

// Grant remembers which key entry of which index accepted an API key, for
// a caller that will present the very same credential again (the proxy,
// for the next request on a client connection that repeats its header
// block byte for byte). It holds no part of the key.
type Grant struct {
	ix *KeyIndex
	e  *keyEntry
}

// AuthenticateGrant is Authenticate; when it accepts an API key and g is
// not nil, it fills g for Renew (and empties it otherwise).
func (a *Authenticator) AuthenticateGrant(ctx context.Context, authorization, apiKey []byte, now time.Time, g *Grant) (*Principal, error) {
	ix := a.keys.Load()
	if g != nil {
		*g = Grant{}
	}
	// The common case first: an X-Api-Key this index verified before is
	// that key exactly, so it is well-formed and ExtractCredential would
	// take it as it is.
	var e *keyEntry
	if len(authorization) == 0 {
		e = ix.verifiedEntry(trimOWS(apiKey))
	}
	if e == nil {
		kind, cred, err := ExtractCredential(authorization, apiKey)
		if err != nil {
			return nil, err
		}
		if kind != CredentialAPIKey {
			return a.AuthenticateCredential(ctx, kind, cred, now)
		}
		if e, err = ix.lookup(cred, now); err != nil {
			return nil, err
		}
	} else if _, err := e.live(now); err != nil {
		return nil, err
	}
	if g != nil {
		*g = Grant{ix: ix, e: e}
	}
	return &e.principal, nil
}

// Renew authenticates again the credential g was filled for, without
// looking at it: the caller vouches that it is byte for byte the one it
// presented to AuthenticateGrant. ok is false when g is empty or the key
// index changed since (a key created, revoked or rotated): authenticate
// the credential itself then. The key's lifecycle (revocation, expiry,
// the end of a rotation's grace) is checked again at now.
func (a *Authenticator) Renew(g *Grant, now time.Time) (p *Principal, ok bool, err error) {
	if g.e == nil || a.keys.Load() != g.ix {
		return nil, false, nil
	}
	if _, err := g.e.live(now); err != nil {
		return nil, true, err
	}
	return &g.e.principal, true, nil
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
