package devidp

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is one authorization request between /authorize and the
// code exchange. It implements op.AuthRequest.
type authRequest struct {
	id            string
	createdAt     time.Time
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	audience      []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge

	// Set by the login step.
	done     bool
	subject  string
	authTime time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return amrFor(a.done) }
func (a *authRequest) GetAudience() []string                 { return a.audience }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func amrFor(done bool) []string {
	if done {
		return []string{"pwd"}
	}
	return nil
}

// refreshRequest is the grant a refresh token stands for. It implements
// op.RefreshTokenRequest.
type refreshRequest struct {
	subject  string
	clientID string
	scopes   []string
	audience []string
	authTime time.Time
	amr      []string
}

func (r *refreshRequest) GetAMR() []string            { return r.amr }
func (r *refreshRequest) GetAudience() []string       { return r.audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *refreshRequest) GetClientID() string         { return r.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// clientCredentialsRequest is a client credentials grant: the client is
// the subject. It implements op.TokenRequest.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
	audience []string
}

func (c *clientCredentialsRequest) GetSubject() string    { return c.clientID }
func (c *clientCredentialsRequest) GetAudience() []string { return c.audience }
func (c *clientCredentialsRequest) GetScopes() []string   { return c.scopes }

// opClient adapts a configured Client to op.Client.
type opClient struct {
	c          *Client
	idTokenTTL time.Duration
	loginURL   func(id string) string
}

var _ op.Client = (*opClient)(nil)

func (o *opClient) GetID() string { return o.c.ID }

// RedirectURIs are matched exactly, except that op matches a native
// (public) client's loopback redirect on path alone, ignoring host and
// port, as RFC 8252 §7.3 asks.
func (o *opClient) RedirectURIs() []string           { return o.c.RedirectURIs }
func (o *opClient) PostLogoutRedirectURIs() []string { return nil }

func (o *opClient) ApplicationType() op.ApplicationType {
	if o.c.public() {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (o *opClient) AuthMethod() oidc.AuthMethod {
	if o.c.public() {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (o *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (o *opClient) GrantTypes() []oidc.GrantType {
	g := []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
	if !o.c.public() {
		g = append(g, oidc.GrantTypeClientCredentials)
	}
	return g
}

func (o *opClient) LoginURL(id string) string            { return o.loginURL(id) }
func (o *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (o *opClient) IDTokenLifetime() time.Duration       { return o.idTokenTTL }
func (o *opClient) DevMode() bool                        { return false }
func (o *opClient) ClockSkew() time.Duration             { return 0 }
func (o *opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (o *opClient) IsScopeAllowed(scope string) bool     { return scope == "groups" }
func (o *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return slices.Clone[[]string]
}
func (o *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return slices.Clone[[]string]
}
