// Package identity keeps the Authenticator's token Resolver in step with
// the tenants' identity settings (issuers, audiences, tenant claims) and
// the Gateway's admin rules, revision by revision.
package identity

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

// Runtime keeps the Authenticator's token Resolver in step with the
// tenants' identity settings. Key sets survive reloads, so a reload never
// makes stoad ask the IdPs again.
type Runtime struct {
	a        *auth.Authenticator
	keySets  *auth.KeySets
	audience func() string // the gateway's own resource URL (default audience)
	log      *slog.Logger
}

// New returns the runtime that sets a's resolver. audience is the
// gateway's own resource URL, the default token audience.
func New(a *auth.Authenticator, audience func() string, log *slog.Logger) *Runtime {
	return &Runtime{a: a, keySets: auth.NewKeySets(auth.KeySetOptions{Logger: log}), audience: audience, log: log}
}

func (r *Runtime) Name() string { return "identity" }

// resolverConfig maps tenants (and tools naming their own issuer) onto the
// auth package's config.
func (r *Runtime) resolverConfig(st *state.Revision) auth.ResolverConfig {
	cfg := auth.ResolverConfig{KeySets: r.keySets, DefaultAudiences: []string{r.audience()}}
	type key struct{ tenant, issuer string }
	seen := map[key]bool{}
	claim := func(c *spec.ClaimMatch) *auth.ClaimMatch {
		if c == nil {
			return nil
		}
		return &auth.ClaimMatch{Claim: c.Claim, Value: c.Value}
	}
	for _, o := range st.OfKind(spec.KindTenant) {
		t := o.Spec.(*spec.TenantSpec)
		if t.Identity == nil || t.Identity.Issuer == "" {
			continue
		}
		id := t.Identity
		seen[key{o.Metadata.Name, id.Issuer}] = true
		cfg.Identities = append(cfg.Identities, auth.Identity{
			Tenant: o.Metadata.Name, Issuer: id.Issuer, JWKSURL: id.JWKSURL, Audiences: id.Audiences,
			TenantClaim: claim(id.TenantClaim), Algorithms: id.Algorithms,
		})
	}
	// A Tool may accept tokens of an issuer of its own: that issuer's
	// tokens then belong to the tool's tenant too.
	for _, o := range st.OfKind(spec.KindTool) {
		ts := o.Spec.(*spec.ToolSpec)
		if ts.Auth == nil || ts.Auth.Issuer == "" {
			continue
		}
		k := key{o.Metadata.Namespace, ts.Auth.Issuer}
		if seen[k] {
			continue
		}
		seen[k] = true
		var tc *auth.ClaimMatch
		if t := st.Tenant(o.Metadata.Namespace); t != nil && t.Identity != nil {
			tc = claim(t.Identity.TenantClaim)
		}
		cfg.Identities = append(cfg.Identities, auth.Identity{
			Tenant: o.Metadata.Namespace, Issuer: ts.Auth.Issuer, Audiences: ts.Auth.Audiences, TenantClaim: tc,
		})
	}
	if gw := st.Gateway(); gw != nil {
		for _, a := range gw.Admins {
			cfg.Admins = append(cfg.Admins, auth.AdminRule{
				Issuer: a.Issuer, JWKSURL: a.JWKSURL, Audiences: a.Audiences,
				Claim: auth.ClaimMatch{Claim: a.Claim, Value: a.Value},
			})
		}
	}
	return cfg
}

func (r *Runtime) Prepare(st *state.Revision) (func(), error) {
	res, err := auth.NewResolver(r.resolverConfig(st))
	if err != nil {
		return nil, fmt.Errorf("token issuers: %w", err)
	}
	return func() {
		r.a.SetResolver(res)
		r.keySets.Retain(res)
		if len(res.Issuers()) > 0 {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := res.Prefetch(ctx, time.Now()); err != nil {
					r.log.Warn("prefetch identity provider keys", "err", err)
				}
			}()
		}
	}, nil
}

func (r *Runtime) Start(context.Context) error { return nil }
func (r *Runtime) Stop(context.Context) error  { return nil }

func (r *Runtime) Status() api.Component {
	c := api.Component{Name: "identity", State: "ok"}
	sets := r.keySets.Status()
	if len(sets) == 0 {
		c.Detail = "no token issuers configured (API keys only)"
		return c
	}
	bad := 0
	for _, s := range sets {
		if s.Keys == 0 {
			bad++
		}
	}
	c.Detail = fmt.Sprintf("%d issuers, %d without keys", len(sets), bad)
	if bad > 0 {
		c.State = "degraded"
	}
	c.Data = map[string]any{"issuers": sets}
	return c
}
