package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Identity says which tokens belong to one tenant. It mirrors
// spec.TenantIdentity plus the tenant's name.
type Identity struct {
	// Tenant is the tenant's name.
	Tenant string
	// Issuer is the exact iss of the tenant's tokens; its discovery
	// document gives the JWKS unless JWKSURL is set.
	Issuer string
	// JWKSURL overrides discovery.
	JWKSURL string
	// Audiences accepted in aud; default ResolverConfig.DefaultAudiences.
	// A token must name at least one.
	Audiences []string
	// TenantClaim selects this tenant's tokens when several tenants share
	// an issuer (then every one of them must set it).
	TenantClaim *ClaimMatch
	// Algorithms allowed; default DefaultAlgorithms(). none and HS* are
	// refused at construction.
	Algorithms []string
}

// AdminRule makes the bearers of matching tokens platform admins. Unlike
// spec.GatewaySpec.AdminClaim it names the issuer: honouring an admin claim
// from any trusted issuer would let a tenant that runs its own IdP mint
// itself platform admin.
type AdminRule struct {
	// Issuer of admin tokens (required). It may be an issuer no tenant
	// uses.
	Issuer string
	// JWKSURL overrides discovery.
	JWKSURL string
	// Audiences accepted; default ResolverConfig.DefaultAudiences.
	Audiences []string
	// Claim must match (required), e.g. {Claim: "roles", Value: "stoa:admin"}.
	Claim ClaimMatch
	// Algorithms allowed; default DefaultAlgorithms().
	Algorithms []string
}

// ResolverConfig builds a Resolver.
type ResolverConfig struct {
	// Identities of the tenants that accept tokens.
	Identities []Identity
	// Admins are the rules that make a token a platform admin's.
	Admins []AdminRule
	// DefaultAudiences apply to identities and rules that name none (the
	// gateway's own resource URL).
	DefaultAudiences []string
	// KeySets fetches and caches JWKS; share one across reloads. Default: a
	// new one with default options.
	KeySets *KeySets
	// Skew tolerated on nbf and iat (never on exp). Default 60s.
	Skew time.Duration
	// CacheTTL bounds how long a verified token is served from the cache
	// (never past its exp). Default 5m; negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached tokens. Default 10000.
	CacheSize int
}

// Resolver verifies bearer tokens and maps them to tenants. It is immutable
// once built: build a new one when tenants change (keeping KeySets).
type Resolver struct {
	issuers  map[string]*issuerEntry
	keySets  *KeySets
	skew     time.Duration
	cacheTTL time.Duration
	cache    *tokenCache
}

type issuerEntry struct {
	issuer  string
	keys    *remoteKeySet
	algs    []jose.SignatureAlgorithm
	auds    []string // union over tenants and admin rules
	tenants []tenantRule
	admins  []adminRule
}

type tenantRule struct {
	tenant string
	auds   []string
	algs   []string
	claim  *ClaimMatch
}

type adminRule struct {
	auds  []string
	algs  []string
	claim ClaimMatch
}

// NewResolver validates cfg and builds a Resolver. It makes no network
// call; see Prefetch.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	r := &Resolver{issuers: map[string]*issuerEntry{}, keySets: cfg.KeySets, skew: cfg.Skew, cacheTTL: cfg.CacheTTL}
	if r.keySets == nil {
		r.keySets = NewKeySets(KeySetOptions{})
	}
	if r.skew <= 0 {
		r.skew = 60 * time.Second
	}
	if r.cacheTTL == 0 {
		r.cacheTTL = 5 * time.Minute
	}
	if r.cacheTTL > 0 {
		size := cfg.CacheSize
		if size <= 0 {
			size = 10000
		}
		r.cache = newTokenCache(size)
	}
	jwks := map[string]string{}
	entry := func(what, issuer, jwksURL string) (*issuerEntry, error) {
		if err := checkFetchURLString(issuer); err != nil {
			return nil, fmt.Errorf("build token resolver: %s: issuer: %w", what, err)
		}
		if jwksURL != "" {
			if err := checkFetchURLString(jwksURL); err != nil {
				return nil, fmt.Errorf("build token resolver: %s: jwks url: %w", what, err)
			}
		}
		if prev, ok := jwks[issuer]; ok && prev != jwksURL {
			return nil, fmt.Errorf("build token resolver: %s: issuer %s is configured with two different jwks urls", what, issuer)
		}
		jwks[issuer] = jwksURL
		e := r.issuers[issuer]
		if e == nil {
			e = &issuerEntry{issuer: issuer}
			r.issuers[issuer] = e
		}
		return e, nil
	}
	for _, id := range cfg.Identities {
		what := "tenant " + id.Tenant
		if id.Tenant == "" {
			return nil, errors.New("build token resolver: identity without a tenant name")
		}
		e, err := entry(what, id.Issuer, id.JWKSURL)
		if err != nil {
			return nil, err
		}
		auds, algs, err := audsAndAlgs(what, id.Audiences, cfg.DefaultAudiences, id.Algorithms)
		if err != nil {
			return nil, err
		}
		if id.TenantClaim != nil && (id.TenantClaim.Claim == "" || id.TenantClaim.Value == "") {
			return nil, fmt.Errorf("build token resolver: %s: tenant claim needs a claim and a value", what)
		}
		e.tenants = append(e.tenants, tenantRule{tenant: id.Tenant, auds: auds, algs: algs, claim: id.TenantClaim})
		e.addAuds(auds, algs)
	}
	for i, a := range cfg.Admins {
		what := fmt.Sprintf("admin rule %d", i+1)
		if a.Claim.Claim == "" || a.Claim.Value == "" {
			return nil, fmt.Errorf("build token resolver: %s: needs a claim and a value", what)
		}
		e, err := entry(what, a.Issuer, a.JWKSURL)
		if err != nil {
			return nil, err
		}
		auds, algs, err := audsAndAlgs(what, a.Audiences, cfg.DefaultAudiences, a.Algorithms)
		if err != nil {
			return nil, err
		}
		e.admins = append(e.admins, adminRule{auds: auds, algs: algs, claim: a.Claim})
		e.addAuds(auds, algs)
	}
	for iss, e := range r.issuers {
		if err := checkSharedIssuer(e); err != nil {
			return nil, err
		}
		e.keys = r.keySets.get(iss, jwks[iss])
	}
	return r, nil
}

func audsAndAlgs(what string, auds, def, algs []string) ([]string, []string, error) {
	if len(auds) == 0 {
		auds = def
	}
	if len(auds) == 0 {
		return nil, nil, fmt.Errorf("build token resolver: %s: no audiences (set identity audiences or the gateway's resource)", what)
	}
	if len(algs) == 0 {
		algs = DefaultAlgorithms()
	}
	for _, a := range algs {
		if !supportedAlgorithm(a) {
			return nil, nil, fmt.Errorf("build token resolver: %s: algorithm %q is not allowed (use asymmetric algorithms: %v)", what, a, DefaultAlgorithms())
		}
	}
	return slices.Clone(auds), slices.Clone(algs), nil
}

func (e *issuerEntry) addAuds(auds, algs []string) {
	for _, a := range auds {
		if !slices.Contains(e.auds, a) {
			e.auds = append(e.auds, a)
		}
	}
	for _, a := range algs {
		if !slices.Contains(e.algs, jose.SignatureAlgorithm(a)) {
			e.algs = append(e.algs, jose.SignatureAlgorithm(a))
		}
	}
}

// checkSharedIssuer refuses configurations where one token could belong to
// two tenants for lack of a distinguishing claim.
func checkSharedIssuer(e *issuerEntry) error {
	if len(e.tenants) < 2 {
		return nil
	}
	names := make([]string, 0, len(e.tenants))
	for _, t := range e.tenants {
		names = append(names, t.tenant)
	}
	sort.Strings(names)
	for i, t := range e.tenants {
		if t.claim == nil {
			return fmt.Errorf("build token resolver: tenants %v share issuer %s: set identity.tenantClaim on each (tenant %s has none)", names, e.issuer, t.tenant)
		}
		for _, u := range e.tenants[:i] {
			if u.tenant != t.tenant && *u.claim == *t.claim {
				return fmt.Errorf("build token resolver: tenants %s and %s share issuer %s and the same tenant claim", u.tenant, t.tenant, e.issuer)
			}
		}
	}
	return nil
}

// Issuers lists the trusted issuers, sorted.
func (r *Resolver) Issuers() []string {
	out := make([]string, 0, len(r.issuers))
	for iss := range r.issuers {
		out = append(out, iss)
	}
	sort.Strings(out)
	return out
}

// Prefetch fetches every issuer's keys (subject to the refresh rate limit),
// so the first requests do not wait for the IdPs. It returns the joined
// errors of issuers whose keys could not be fetched.
func (r *Resolver) Prefetch(ctx context.Context, now time.Time) error {
	var errs []error
	for _, iss := range r.Issuers() {
		if _, err := r.issuers[iss].keys.keysFor(ctx, "", now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Authenticate verifies a bearer token at now and returns its Principal,
// shared and read-only. A token seen before costs one SHA-256 and one map
// lookup and does not allocate. Otherwise it is parsed, its issuer must be
// one the configuration trusts (checked before any network call), its times
// and audience are checked, and only then are the issuer's keys consulted
// (possibly fetched, rate-limited) to verify the signature. ctx bounds the
// wait for a key fetch.
func (r *Resolver) Authenticate(ctx context.Context, token []byte, now time.Time) (*Principal, error) {
	if len(token) == 0 || len(token) > MaxCredentialBytes {
		return nil, fmt.Errorf("%w: bad length", ErrTokenMalformed)
	}
	var key [32]byte
	if r.cache != nil {
		key = sha256.Sum256(token)
		if p := r.cache.get(&key, now.UnixNano()); p != nil {
			return p, nil
		}
	}
	p, err := r.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if r.cache != nil {
		deadline := min(p.ExpiresAt.UnixNano(), now.Add(r.cacheTTL).UnixNano())
		r.cache.put(&key, p, deadline, now.UnixNano())
	}
	return p, nil
}

// maxKeyTries bounds signature attempts for a token without kid.
const maxKeyTries = 4

func (r *Resolver) verify(ctx context.Context, token []byte, now time.Time) (*Principal, error) {
	jws, err := jose.ParseSignedCompact(string(token), supportedAlgorithms)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, fmt.Errorf("%w: %s", ErrTokenAlgorithm, safeLabel(string(algErr.Got)))
		}
		return nil, fmt.Errorf("%w: not a compact jws", ErrTokenMalformed)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrTokenMalformed)
	}
	hdr := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(hdr.Algorithm)
	c, err := parseClaims(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return nil, err
	}
	// Route by the (still unverified) iss: an issuer nobody trusts is
	// refused here, before any key is fetched.
	e := r.issuers[c.iss]
	if e == nil {
		return nil, fmt.Errorf("%w: %s", ErrTokenUnknownIssuer, safeLabel(c.iss))
	}
	if !slices.Contains(e.algs, alg) {
		return nil, fmt.Errorf("%w: %s for issuer %s", ErrTokenAlgorithm, safeLabel(string(alg)), e.issuer)
	}
	// Cheap claim checks before the costly signature check, so expired or
	// misdirected tokens never cause a key fetch.
	if err := c.checkTimes(now, r.skew); err != nil {
		return nil, err
	}
	if !c.hasAudience(e.auds) {
		return nil, ErrTokenAudience
	}
	keys, err := e.keys.keysFor(ctx, hdr.KeyID, now)
	if err != nil {
		return nil, err
	}
	tried := 0
	for _, k := range keys {
		if !k.accepts(alg) {
			continue
		}
		if tried++; tried > maxKeyTries {
			break
		}
		// Only the public key from the JWKS is used; jwk, jku, x5u and x5c
		// headers in the token are ignored.
		if _, err := jws.Verify(k.key); err == nil {
			return r.resolve(e, c, alg)
		}
	}
	if tried == 0 {
		return nil, fmt.Errorf("%w: %s does not match the key's algorithm", ErrTokenAlgorithm, safeLabel(string(alg)))
	}
	return nil, ErrTokenSignature
}

// resolve maps a verified token to its tenant and admin status.
func (r *Resolver) resolve(e *issuerEntry, c *tokenClaims, alg jose.SignatureAlgorithm) (*Principal, error) {
	p := &Principal{
		Method:    MethodJWT,
		Issuer:    c.iss,
		Subject:   c.sub,
		ClientID:  c.clientID,
		Audiences: c.aud,
		Scopes:    c.scopes,
		Algorithm: string(alg),
		ExpiresAt: c.exp,
		claims:    c.all,
	}
	matched := 0
	for _, t := range e.tenants {
		if !c.hasAudience(t.auds) || !slices.Contains(t.algs, string(alg)) {
			continue
		}
		if t.claim != nil && !p.Matches(*t.claim) {
			continue
		}
		if matched > 0 && p.Tenant == t.tenant {
			continue
		}
		p.Tenant = t.tenant
		matched++
	}
	for _, a := range e.admins {
		if c.hasAudience(a.auds) && slices.Contains(a.algs, string(alg)) && p.Matches(a.claim) {
			p.Admin = true
			break
		}
	}
	switch {
	case matched > 1:
		return nil, fmt.Errorf("%w: issuer %s", ErrTokenAmbiguousTenant, e.issuer)
	case matched == 0 && !p.Admin:
		return nil, fmt.Errorf("%w: issuer %s", ErrTokenNoTenant, e.issuer)
	}
	return p, nil
}
