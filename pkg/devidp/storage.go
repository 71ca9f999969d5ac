package devidp

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequestTTL bounds how long a login may take.
const authRequestTTL = 10 * time.Minute

// store is the in-memory op.Storage. One mutex guards every map: a dev
// issuer serves a handful of requests, and one lock keeps the rotation and
// reuse rules obviously atomic.
type store struct {
	cfg  *Config
	keys *keyRing
	// loginURL builds the login page URL of an auth request.
	loginURL func(id string) string

	users   map[string]*User
	clients map[string]*Client

	mu           sync.Mutex
	authRequests map[string]*authRequest
	codes        map[string]string // code → auth request id
	accessTokens map[string]*accessToken
	refresh      map[string]*refreshToken // token → record
	devices      map[string]*deviceEntry  // device code → entry
	userCodes    map[string]string        // user code → device code
}

type accessToken struct {
	id, subject, clientID string
	scopes, audience      []string
	expires               time.Time
}

type refreshToken struct {
	id      string
	family  string
	req     refreshRequest
	expires time.Time // of the family: rotation does not extend it
	// used marks a rotated-out token, kept to detect reuse until expires.
	used bool
}

type deviceEntry struct {
	deviceCode string
	userCode   string
	state      op.DeviceAuthorizationState
	// issued marks a device code already exchanged for tokens: device
	// codes are single use (RFC 8628 §3.5 lets the server refuse repeats).
	issued bool
}

var (
	_ op.Storage                        = (*store)(nil)
	_ op.ClientCredentialsStorage       = (*store)(nil)
	_ op.DeviceAuthorizationStorage     = (*store)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*store)(nil)
	_ op.CanSetUserinfoFromRequest      = (*store)(nil)
)

func newStore(cfg *Config, keys *keyRing) *store {
	s := &store{
		cfg: cfg, keys: keys,
		users: map[string]*User{}, clients: map[string]*Client{},
		authRequests: map[string]*authRequest{}, codes: map[string]string{},
		accessTokens: map[string]*accessToken{}, refresh: map[string]*refreshToken{},
		devices: map[string]*deviceEntry{}, userCodes: map[string]string{},
	}
	for i := range cfg.Users {
		s.users[cfg.Users[i].Username] = &cfg.Users[i]
	}
	for i := range cfg.Clients {
		s.clients[cfg.Clients[i].ID] = &cfg.Clients[i]
	}
	return s
}

func (s *store) now() time.Time { return s.cfg.Now() }

// gc drops expired state; callers hold mu.
func (s *store) gc(now time.Time) {
	for id, a := range s.authRequests {
		if now.Sub(a.createdAt) > authRequestTTL {
			s.deleteAuthRequestLocked(id)
		}
	}
	for id, t := range s.accessTokens {
		if !now.Before(t.expires) {
			delete(s.accessTokens, id)
		}
	}
	for tok, r := range s.refresh {
		if !now.Before(r.expires) {
			delete(s.refresh, tok)
		}
	}
	for dc, d := range s.devices {
		if time.Now().After(d.state.Expires.Add(time.Minute)) { // op set Expires from the real clock
			delete(s.devices, dc)
			delete(s.userCodes, d.userCode)
		}
	}
}

// equalSecret compares secrets in constant time (hashing first, so their
// lengths do not leak either).
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// --- clients ---

func (s *store) opClient(c *Client) *opClient {
	return &opClient{c: c, idTokenTTL: s.cfg.IDTokenTTL, loginURL: s.loginURL}
}

var errUnknownClient = errors.New("unknown client")

func (s *store) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c := s.clients[id]
	if c == nil {
		return nil, errUnknownClient
	}
	return s.opClient(c), nil
}

func (s *store) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c := s.clients[id]
	if c == nil || c.public() || !equalSecret(c.Secret, secret) {
		return errors.New("client authentication failed")
	}
	return nil
}

func (s *store) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	if err := s.AuthorizeClientIDSecret(ctx, id, secret); err != nil {
		return nil, err
	}
	return s.opClient(s.clients[id]), nil
}

func (s *store) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &clientCredentialsRequest{clientID: id, scopes: scopes, audience: []string{s.cfg.Audience}}, nil
}

// --- authorization requests ---

func (s *store) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c := s.clients[req.ClientID]
	if c == nil {
		return nil, oidc.ErrInvalidClient()
	}
	// PKCE with S256 is required of public clients (OAuth 2.1), and
	// "plain" is refused for everyone: it protects nothing against an
	// attacker who sees the authorization request.
	switch {
	case req.CodeChallenge == "" && c.public():
		return nil, oidc.ErrInvalidRequest().WithDescription("public clients must use PKCE (code_challenge with code_challenge_method=S256)")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	now := s.now()
	a := &authRequest{
		id: randomHex(16), createdAt: now,
		clientID: req.ClientID, redirectURI: req.RedirectURI,
		state: req.State, nonce: req.Nonce, scopes: req.Scopes,
		audience:     []string{s.cfg.Audience, req.ClientID},
		responseType: req.ResponseType, responseMode: req.ResponseMode,
	}
	if req.CodeChallenge != "" {
		a.codeChallenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gc(now)
	s.authRequests[a.id] = a
	return a, nil
}

func (s *store) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authRequests[id]
	if a == nil || s.now().Sub(a.createdAt) > authRequestTTL {
		return nil, errors.New("auth request not found or expired")
	}
	return a, nil
}

func (s *store) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authRequests[s.codes[code]]
	if a == nil || !a.done || s.now().Sub(a.createdAt) > authRequestTTL {
		return nil, errors.New("code not found, used or expired")
	}
	return a, nil
}

func (s *store) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authRequests[id] == nil {
		return errors.New("auth request not found")
	}
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest runs when a code is exchanged, which makes codes
// single use.
func (s *store) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteAuthRequestLocked(id)
	return nil
}

func (s *store) deleteAuthRequestLocked(id string) {
	delete(s.authRequests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
}

// completeLogin marks an auth request as authenticated by user.
func (s *store) completeLogin(id, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.authRequests[id]
	now := s.now()
	if a == nil || now.Sub(a.createdAt) > authRequestTTL {
		return errors.New("this login request is unknown or expired; start the login again")
	}
	if a.done {
		return errors.New("this login request is already complete; start the login again")
	}
	a.done, a.subject, a.authTime = true, user, now
	return nil
}

// --- tokens ---

func (s *store) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, exp := s.newAccessTokenLocked(req, clientOf(req))
	return id, exp, nil
}

func clientOf(req op.TokenRequest) string {
	switch r := req.(type) {
	case interface{ GetClientID() string }:
		return r.GetClientID()
	case *clientCredentialsRequest:
		return r.clientID
	}
	return ""
}

func (s *store) newAccessTokenLocked(req op.TokenRequest, clientID string) (string, time.Time) {
	now := s.now()
	s.gc(now)
	t := &accessToken{
		id: randomHex(16), subject: req.GetSubject(), clientID: clientID,
		scopes: slices.Clone(req.GetScopes()), audience: slices.Clone(req.GetAudience()),
		expires: now.Add(s.cfg.AccessTokenTTL),
	}
	s.accessTokens[t.id] = t
	return t.id, t.expires
}

// CreateAccessAndRefreshTokens issues an access token and a new refresh
// token. With currentRefreshToken set it rotates: the presented token is
// marked used (its reuse later revokes the family) and the new one joins
// its family, keeping the family's expiry.
func (s *store) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var rec *refreshToken
	if current != "" {
		old := s.refresh[current]
		if old == nil || !now.Before(old.expires) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token unknown or expired")
		}
		if old.used {
			s.revokeFamilyLocked(old.family)
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token was already used; its family is revoked")
		}
		old.used = true
		rec = &refreshToken{family: old.family, req: old.req, expires: old.expires}
		if rr, ok := req.(*refreshRequest); ok {
			rec.req.scopes = slices.Clone(rr.scopes) // narrowed scopes stick
		}
	} else {
		rr, err := refreshRequestFrom(req)
		if err != nil {
			return "", "", time.Time{}, err
		}
		rec = &refreshToken{family: randomHex(16), req: *rr, expires: now.Add(s.cfg.RefreshTokenTTL)}
	}
	rec.id = randomHex(16)
	token := randomToken()
	s.refresh[token] = rec
	id, exp := s.newAccessTokenLocked(req, rec.req.clientID)
	return id, token, exp, nil
}

func refreshRequestFrom(req op.TokenRequest) (*refreshRequest, error) {
	switch r := req.(type) {
	case *authRequest:
		return &refreshRequest{subject: r.subject, clientID: r.clientID, scopes: slices.Clone(r.scopes), audience: slices.Clone(r.audience), authTime: r.authTime, amr: r.GetAMR()}, nil
	case *op.DeviceAuthorizationState:
		return &refreshRequest{subject: r.Subject, clientID: r.ClientID, scopes: slices.Clone(r.Scopes), audience: slices.Clone(r.GetAudience()), authTime: r.AuthTime, amr: r.AMR}, nil
	case *refreshRequest:
		c := *r
		return &c, nil
	}
	return nil, oidc.ErrServerError().WithDescription("no refresh tokens for this grant").WithParent(fmt.Errorf("unexpected token request %T", req))
}

func (s *store) revokeFamilyLocked(family string) {
	for tok, r := range s.refresh {
		if r.family == family {
			delete(s.refresh, tok)
		}
	}
}

func (s *store) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refresh[token]
	switch {
	case r == nil || !s.now().Before(r.expires):
		return nil, op.ErrInvalidRefreshToken
	case r.used:
		// A rotated-out token came back: either the client misbehaves or
		// it leaked. Revoke everything issued from the same login.
		s.revokeFamilyLocked(r.family)
		return nil, op.ErrInvalidRefreshToken
	}
	c := r.req
	c.scopes = slices.Clone(c.scopes)
	return &c, nil
}

func (s *store) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refresh[token]
	if r == nil || r.req.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return r.req.subject, r.id, nil
}

func (s *store) RevokeToken(_ context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.refresh[tokenOrID]; r != nil {
		if r.req.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
		}
		s.revokeFamilyLocked(r.family)
		return nil
	}
	if t := s.accessTokens[tokenOrID]; t != nil && t.clientID == clientID {
		// The JWT itself stays valid until it expires (resource servers
		// verify it offline); only introspection and userinfo forget it.
		delete(s.accessTokens, tokenOrID)
	}
	return nil
}

func (s *store) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, r := range s.refresh {
		if r.req.subject == userID && r.req.clientID == clientID {
			delete(s.refresh, tok)
		}
	}
	return nil
}

// --- claims ---

// groupsOf returns the groups claim of a token request's subject.
func (s *store) groupsOf(req op.TokenRequest) []string {
	if cc, ok := req.(*clientCredentialsRequest); ok {
		if c := s.clients[cc.clientID]; c != nil {
			return slices.Clone(c.Groups)
		}
		return nil
	}
	if u := s.users[req.GetSubject()]; u != nil {
		return slices.Clone(u.Groups)
	}
	return nil
}

func (s *store) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	claims := map[string]any{"groups": nonNil(s.groupsOf(req))}
	if sc := req.GetScopes(); len(sc) > 0 {
		claims["scope"] = strings.Join(sc, " ")
	}
	if u := s.users[req.GetSubject()]; u != nil {
		if _, cc := req.(*clientCredentialsRequest); !cc {
			claims["preferred_username"] = u.Username
		}
	}
	return claims, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *store) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	if u := s.users[userID]; u != nil {
		return map[string]any{"groups": nonNil(slices.Clone(u.Groups))}, nil
	}
	return nil, nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does
// the work.
func (s *store) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *store) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	s.setUserinfo(info, req.GetSubject(), scopes)
	return nil
}

func (s *store) setUserinfo(info *oidc.UserInfo, subject string, scopes []string) {
	info.Subject = subject
	u := s.users[subject]
	if u == nil {
		return
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.Name
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(u.Email != "")
		case "groups":
			info.AppendClaims("groups", nonNil(slices.Clone(u.Groups)))
		}
	}
}

func (s *store) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t := s.accessTokens[tokenID]
	s.mu.Unlock()
	if t == nil || t.subject != subject || !s.now().Before(t.expires) {
		return errors.New("access token unknown, revoked or expired")
	}
	s.setUserinfo(info, subject, t.scopes)
	return nil
}

func (s *store) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t := s.accessTokens[tokenID]
	s.mu.Unlock()
	if t == nil || t.subject != subject || !s.now().Before(t.expires) {
		return errors.New("access token unknown, revoked or expired")
	}
	resp.Active = true
	resp.Subject = subject
	resp.ClientID = t.clientID
	resp.Scope = t.scopes
	resp.Audience = t.audience
	resp.Expiration = oidc.FromTime(t.expires)
	info := new(oidc.UserInfo)
	s.setUserinfo(info, subject, t.scopes)
	resp.SetUserInfo(info)
	return nil
}

// JWT profile grants (private_key_jwt) are not supported.
func (s *store) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("jwt profile is not supported by the development issuer")
}

func (s *store) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile is not supported by the development issuer")
}

// --- keys ---

func (s *store) SigningKey(context.Context) (op.SigningKey, error) { return s.keys.signing(), nil }

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *store) KeySet(context.Context) ([]op.Key, error) { return s.keys.published(s.now()), nil }

func (s *store) Health(context.Context) error { return nil }

// --- device authorization ---

func (s *store) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gc(s.now())
	if _, dup := s.userCodes[userCode]; dup {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &deviceEntry{deviceCode: deviceCode, userCode: userCode, state: op.DeviceAuthorizationState{
		ClientID: clientID, Scopes: slices.Clone(scopes), Expires: expires,
		Audience: []string{s.cfg.Audience},
	}}
	s.userCodes[userCode] = deviceCode
	return nil
}

func (s *store) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[deviceCode]
	if d == nil || d.state.ClientID != clientID {
		return nil, errors.New("device code unknown")
	}
	if d.issued {
		return nil, errors.New("device code already exchanged")
	}
	st := d.state
	st.Audience = slices.Clone(st.Audience)
	if st.Done {
		d.issued = true
	}
	return &st, nil
}

// deviceByUserCode returns a copy of the pending authorization for a user
// code, normalised the way users type it (case, spaces and dashes).
func (s *store) deviceByUserCode(userCode string) (*deviceEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[s.userCodes[normalizeUserCode(userCode)]]
	switch {
	case d == nil:
		return nil, errors.New("unknown code; check the code your terminal shows")
	case d.state.Done || d.state.Denied:
		return nil, errors.New("this code was already used")
	case !time.Now().Before(d.state.Expires): // op set Expires from the real clock
		return nil, errors.New("this code has expired; start the login again")
	}
	c := *d
	return &c, nil
}

func (s *store) decideDevice(userCode, user string, approve bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[s.userCodes[normalizeUserCode(userCode)]]
	if d == nil || d.state.Done || d.state.Denied || !time.Now().Before(d.state.Expires) {
		return errors.New("this code is unknown, used or expired; start the login again")
	}
	if approve {
		d.state.Done, d.state.Subject, d.state.AuthTime, d.state.AMR = true, user, s.now(), []string{"pwd"}
	} else {
		d.state.Denied = true
	}
	return nil
}

// normalizeUserCode turns "bcdf ghjk", "bcdfghjk" or "BCDF-GHJK" into the
// issued form "BCDF-GHJK".
func normalizeUserCode(c string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(c) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	t := b.String()
	if len(t) == 8 {
		return t[:4] + "-" + t[4:]
	}
	return t
}
