package localapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/rbac"
)

// The LocalAPI served over HTTPS by a control plane: callers are known by
// their OIDC bearer tokens (BearerTokens) and may do what the role
// bindings in force grant them (Roles).

// Verifier checks a bearer token: issuer, audience, expiry and signature
// (auth.Resolver).
type Verifier interface {
	Authenticate(ctx context.Context, token []byte, now time.Time) (*auth.Principal, error)
}

// BearerTokens identifies each request by its bearer token. A request
// without a token, or with one the Verifier refuses, is answered 401 with
// a WWW-Authenticate challenge and says what was wrong, never echoing the
// token.
type BearerTokens struct {
	Verifier Verifier
	// Now is the clock tokens are checked at (default time.Now).
	Now func() time.Time
}

// Conn knows nothing of a TLS connection's peer: every request carries
// its own token.
func (BearerTokens) Conn(net.Conn) Peer { return Peer{} }

// Request verifies the request's token.
func (b BearerTokens) Request(r *http.Request, _ Peer) (Peer, error) {
	kind, cred, err := auth.ExtractHTTP(r.Header)
	switch {
	case errors.Is(err, auth.ErrNoCredential):
		return Peer{}, unauthorized(err, "no bearer token: this control plane answers requests with an OIDC access token only")
	case err != nil:
		return Peer{}, unauthorized(err, "unusable Authorization header: "+err.Error())
	case kind != auth.CredentialBearerToken:
		// An API key is a credential of the gateway's tools, never of
		// its control plane.
		return Peer{}, unauthorized(auth.ErrMethodNotAllowed, "API keys are not accepted by the control plane: it takes OIDC access tokens")
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	p, err := b.Verifier.Authenticate(r.Context(), cred, now())
	switch {
	case errors.Is(err, auth.ErrKeySetUnavailable):
		return Peer{}, apiError(api.CodeUnavailable, "cannot verify the token: "+err.Error(),
			"the issuer's signing keys could not be fetched; check that the control plane reaches the issuer, then try again")
	case err != nil:
		return Peer{}, unauthorized(err, "token refused: "+err.Error())
	case p.Subject == "":
		return Peer{}, unauthorized(auth.ErrTokenMalformed, "token refused: it has no subject (sub)")
	}
	id := &rbac.Identity{Issuer: p.Issuer, Subject: p.Subject, Claims: p.Claims()}
	return Peer{Actor: id.Actor(), Token: id}, nil
}

// challengeError is a 401 and its WWW-Authenticate value.
type challengeError struct {
	e         *api.Error
	challenge string
}

func (c *challengeError) Error() string { return c.e.Message }

func unauthorized(cause error, msg string) error {
	return &challengeError{
		e:         apiError(api.CodeUnauthorized, msg, "log in again: stoa login"),
		challenge: auth.Challenge(cause, ""),
	}
}

// Roles admits token peers according to the role bindings in force
// (docs/fleet.md, "Roles"): it computes the peer's grants once per
// request and checks what the route needs that is known before its
// handler runs — the daemon as a whole, a list's ?namespace=, or at least
// some role. Handlers check the rest (the tenant a body or record names,
// an apply's plan) and filter what they list.
type Roles struct {
	Bindings *rbac.Authorizer
}

// Authorize implements Authorizer.
func (a Roles) Authorize(r *http.Request, p Peer, route Route) (Peer, error) {
	if p.Token == nil {
		return p, unauthorized(auth.ErrNoCredential, "no bearer token: this control plane answers requests with an OIDC access token only")
	}
	g := a.Bindings.Roles(*p.Token)
	p.Roles = &g
	act := route.RBAC.Action
	switch route.RBAC.Scope {
	case rbac.ScopeDaemon:
		return p, g.Check(act, "", "")
	case rbac.ScopeList:
		return p, g.CheckNamespace(act, r.URL.Query().Get("namespace"))
	}
	// A body, a record or a plan says later which tenant: a token
	// without any role is refused now.
	return p, g.Check(rbac.ActionStatus, "", "")
}

// forbidden turns a refusal of pkg/rbac into the envelope: its message
// names what is missing, its hint who grants it.
func forbidden(err error) (*api.Error, bool) {
	var fe *rbac.ForbiddenError
	if !errors.As(err, &fe) {
		return nil, false
	}
	return apiError(api.CodeForbidden, fe.Message(), fe.Hint()), true
}
