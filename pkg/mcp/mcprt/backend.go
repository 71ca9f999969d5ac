package mcprt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/proxy"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/unixsock"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// index is what authentication needs from one revision.
type index struct {
	// subjects maps (tenant, JWT sub or client id) to a Consumer.
	subjects     map[[2]string]string
	adminIssuers []string
	// expiries lists, per (tenant, consumer), the expiresAt instants (Unix
	// ns, sorted) of its active subscriptions: what a consumer may call
	// changes at those instants without a reload.
	expiries map[[2]string][]int64
	// policies is set when some Tool has a policy chain: tools/list views
	// then depend on the caller's whole identity (claims included).
	policies bool

	// grants caches, per authenticated principal (the pointer
	// Authenticate returned: a key's entry, a cached token's principal),
	// the Grants built for it under this index, so that a call does not
	// build its key and allocate its Grants again (cachedGrants). It lives
	// and dies with the index: a reload or apply installs a new index,
	// and so drops every entry at the point the grants of a revision
	// change today.
	grants  sync.Map // *auth.Principal → *grantsEntry
	ngrants atomic.Int64
}

// grantsEntry is one cached Grants and the instant (Unix ns, admission
// clock) from which its key no longer holds: the consumer's next
// subscription expiry, math.MaxInt64 when none.
type grantsEntry struct {
	g     *grants
	until int64
}

// maxCachedGrants bounds one index's cache (distinct principals: keys
// and tokens); beyond it, grants are built per call as without a cache.
const maxCachedGrants = 4096

func newIndex(st *state.Revision) *index {
	idx := &index{subjects: map[[2]string]string{}, expiries: map[[2]string][]int64{}}
	for _, o := range st.OfKind(spec.KindConsumer) {
		for _, s := range o.Spec.(*spec.ConsumerSpec).Subjects {
			idx.subjects[[2]string{o.Metadata.Namespace, s}] = o.Metadata.Name
		}
	}
	for _, o := range st.OfKind(spec.KindSubscription) {
		s := o.Spec.(*spec.SubscriptionSpec)
		if s.ExpiresAt == "" || (s.State != "" && s.State != "active") {
			continue
		}
		if at, err := time.Parse(time.RFC3339, s.ExpiresAt); err == nil {
			k := [2]string{o.Metadata.Namespace, s.Consumer}
			idx.expiries[k] = append(idx.expiries[k], at.UnixNano())
		}
	}
	for _, e := range idx.expiries {
		slices.Sort(e)
	}
	for _, a := range st.Gateway().Admins {
		if a.Issuer != "" {
			idx.adminIssuers = append(idx.adminIssuers, a.Issuer)
		}
	}
	return idx
}

// backend implements mcp.Backend with the daemon's shared authenticator
// and the proxy's call path.
type backend struct {
	o     *Options
	index atomic.Pointer[index]
	// live is the revision being served; fed the federated MCP servers.
	live       atomic.Pointer[state.Revision]
	fed        *federation.Manager
	fedMetrics *fedMetrics
	denials    denialLog
	// pols are the live revision's policy chains (resources/read).
	pols atomic.Pointer[policies]
}

// grants is what a non-admin principal may call, so that tools/list
// shows only that (mcp.Grants): the checks tools/call makes before the
// upstream — the Tool's credential requirement (kind, issuer, audience,
// scopes) and an active, unexpired subscription of the caller's consumer
// (admission; used-up quotas aside, since they reset).
type grants struct {
	b   *backend
	p   *auth.Principal
	key string

	pcOnce sync.Once
	pc     *policy.Caller
	caller mcp.Caller
}

func (g *grants) Key() string { return g.key }

func (g *grants) Allows(t *mcp.Tool) bool {
	h, _ := t.Handle.(*handle)
	if h == nil {
		return false
	}
	if h.req != nil && g.p.Check(h.req) != nil {
		return false
	}
	if h.chain != nil {
		// Hidden when the policy can never allow this caller, whatever
		// the request (docs/policy.md "Hiding tools in tools/list").
		g.pcOnce.Do(func() { g.pc = policyCaller(g.caller) })
		if ok, _ := h.chain.Visible(&policy.Input{Caller: g.pc, Target: h.target}, policy.KnownIdentity); !ok {
			return false
		}
	}
	a := g.b.o.Admission
	return a == nil || a.Covers(h.tenant, h.tool, g.p)
}

// cachedGrants returns the Grants of a non-admin principal p (as
// Authenticate made it; orig is the principal the authenticator returned,
// p itself or a copy naming its consumer) for caller c, from idx's cache
// when its key still holds at the admission clock's now: the same object,
// hence the same key, that grantsFor would build again. timed says the key
// depends on now (a consumer under admission); now is read only then.
func (b *backend) cachedGrants(orig, p *auth.Principal, c mcp.Caller, idx *index, timed bool, now int64) *grants {
	v, ok := idx.grants.Load(orig)
	if ok {
		if e := v.(*grantsEntry); !timed || now < e.until {
			return e.g
		}
	}
	g, until := b.grantsFor(p, idx, timed, now)
	g.caller = c
	// An expired entry is replaced; a new one is added while there is room.
	if ok || idx.ngrants.Add(1) <= maxCachedGrants {
		idx.grants.Store(orig, &grantsEntry{g: g, until: until})
	}
	return g
}

// grantsFor builds the Grants of a non-admin principal and says until when
// (Unix ns, exclusive) its key holds. The key holds everything Allows
// depends on: tenant, consumer (or token subject and client id when none),
// credential kind, issuer, audiences, scopes, and, when timed, the
// consumer's next subscription expiry after now (the set changes then).
func (b *backend) grantsFor(p *auth.Principal, idx *index, timed bool, now int64) (*grants, int64) {
	var kb [128]byte
	k := append(kb[:0], p.Tenant...)
	k = append(k, 0)
	if p.Consumer != "" {
		k = append(k, p.Consumer...)
	} else {
		k = append(append(append(append(k, 1), p.Subject...), 0), p.ClientID...)
	}
	k = strconv.AppendInt(append(k, 0), int64(p.Method), 10)
	k = append(append(k, 0), p.Issuer...)
	if p.Method == auth.MethodJWT {
		aud, scopes := slices.Clone(p.Audiences), slices.Clone(p.Scopes)
		slices.Sort(aud)
		slices.Sort(scopes)
		k = append(append(append(append(k, 0), strings.Join(aud, " ")...), 0), strings.Join(scopes, " ")...)
	}
	until := int64(math.MaxInt64)
	if timed && p.Consumer != "" {
		exp := idx.expiries[[2]string{p.Tenant, p.Consumer}]
		if i, _ := slices.BinarySearch(exp, now+1); i < len(exp) {
			k = strconv.AppendInt(append(k, 0), exp[i], 10)
			until = exp[i]
		}
	}
	if idx.policies {
		k = append(append(k, 0, 'p'), identityKey(p)...)
	}
	return &grants{b: b, p: p, key: string(k)}, until
}

// Authenticate maps the request's credential to a Caller. On the unix
// socket a request without credential is the socket owner's: the admin view,
// or one tenant's when selected.
func (b *backend) Authenticate(ctx context.Context, cr mcp.Credentials) (mcp.Caller, error) {
	authz, key, sel := cr.Authorization, cr.APIKey, cr.Tenant
	if cr.Peer != nil && len(authz) == 0 && len(key) == 0 {
		if !unixsock.Trusted(cr.Peer.UID) {
			return mcp.Caller{}, &mcp.AuthError{Description: fmt.Sprintf("uid %d is not the socket's owner; present a credential", cr.Peer.UID)}
		}
		c := mcp.Caller{Admin: true, Via: "socket", Subject: fmt.Sprintf("uid %d", cr.Peer.UID)}
		if sel != "" {
			c.Admin, c.Tenant = false, sel
		}
		return c, nil
	}
	pr, err := b.o.Auth.Authenticate(ctx, authz, key, cr.Time)
	if err != nil {
		return mcp.Caller{}, authError(err)
	}
	orig := pr
	idx := b.index.Load()
	c := mcp.Caller{Tenant: pr.Tenant, Admin: pr.Admin, Consumer: pr.Consumer, Subject: pr.KeyID, Via: "apikey"}
	if pr.Method == auth.MethodJWT {
		c.Via, c.Subject = "jwt", pr.Subject
		if c.Consumer == "" {
			cons := idx.subjects[[2]string{pr.Tenant, pr.Subject}]
			if cons == "" && pr.ClientID != "" {
				cons = idx.subjects[[2]string{pr.Tenant, pr.ClientID}]
			}
			if cons != "" {
				// Principals are shared (token cache): never modify one.
				cp := *pr
				cp.Consumer = cons
				pr = &cp
				c.Consumer = cons
			}
		}
	}
	if sel != "" {
		switch {
		case pr.Admin:
			c.Admin, c.Tenant = false, sel
		case sel != pr.Tenant:
			return mcp.Caller{}, &mcp.AuthError{Status: http.StatusForbidden, Code: "insufficient_scope", TokenPresent: true,
				Description: "the credential does not belong to the selected tenant"}
		}
	}
	c.Principal = pr
	if !pr.Admin {
		var now int64
		timed := pr.Consumer != "" && b.o.Admission != nil
		if timed {
			now = b.o.Admission.Now().UnixNano()
		}
		c.Grants = b.cachedGrants(orig, pr, c, idx, timed, now)
	}
	return c, nil
}

// authError maps an authentication failure to the MCP answer without
// saying which check failed (like the proxy).
func authError(err error) *mcp.AuthError {
	ae := &mcp.AuthError{TokenPresent: !errors.Is(err, auth.ErrNoCredential)}
	switch auth.HTTPStatus(err) {
	case http.StatusBadRequest:
		ae.Status, ae.Code, ae.Description = http.StatusBadRequest, "invalid_request", "malformed or ambiguous credentials"
	case http.StatusForbidden:
		ae.Status, ae.Code, ae.Description = http.StatusForbidden, "insufficient_scope", "the credential does not grant access"
	case http.StatusServiceUnavailable:
		ae.Status, ae.TokenPresent, ae.Description = http.StatusServiceUnavailable, false, "identity provider keys are unavailable; retry later"
	}
	return ae
}

var callRequests = sync.Pool{New: func() any { return new(proxy.CallRequest) }}

// Call runs one tools/call through the proxy: the same admission,
// subscriptions, rate limits (the operation's own included), upstream
// pools, retries and timeouts as proxied requests.
func (b *backend) Call(ctx context.Context, c mcp.Caller, t *mcp.Tool, req *mcp.UpstreamRequest) (mcp.UpstreamResponse, error) {
	h, _ := t.Handle.(*handle)
	if h == nil {
		return mcp.UpstreamResponse{}, mcp.ErrUnknownTool
	}
	start := time.Now()
	// proxy.Call keeps a pointer to its request (it escapes): pooled,
	// rather than allocated per call. Nothing keeps it after Call and
	// CaptureCall (which copies what it records).
	cr := callRequests.Get().(*proxy.CallRequest)
	defer func() {
		*cr = proxy.CallRequest{}
		callRequests.Put(cr)
	}()
	*cr = proxy.CallRequest{
		Tenant: h.tenant, Tool: h.tool, OpLimit: h.opLimit, OpKey: h.opKey, Timeout: h.timeout,
		Method: req.Method, Path: req.Path, Query: req.Query, Body: req.Body, Start: start,
	}
	cr.Principal, _ = c.Principal.(*auth.Principal)
	cr.Client = c.Remote
	if cr.Principal != nil && h.req != nil {
		if err := cr.Principal.Check(h.req); err != nil {
			h.series.Observe(http.StatusForbidden, time.Since(start))
			h.series.Errors.Add(1)
			return mcp.UpstreamResponse{}, fmt.Errorf("not sent: this tool does not accept the credential used (%s)", auth.Reason(err))
		}
	}
	if len(req.Header) > 0 {
		cr.Header = make([][2][]byte, len(req.Header), len(req.Header)+2)
		for i, f := range req.Header {
			cr.Header[i] = [2][]byte{[]byte(f.Name), f.Value}
		}
	}
	// Under the tools/call span the proxy records a limits child and a
	// client span per upstream attempt, each attempt's context going
	// upstream as traceparent (with the caller's tracestate when its trace
	// was continued).
	cr.Trace = c.Span
	resp, err := b.o.Proxy.Call(ctx, cr)
	var elapsed time.Duration
	if resp != nil {
		elapsed = resp.Elapsed // the clock read once for both
	} else {
		elapsed = time.Since(start)
	}
	if b.o.Snapshots != nil && !errors.Is(err, proxy.ErrNoRoute) {
		// Error snapshots of failed calls (no answer or 5xx), like the
		// proxy's OnFailure; before resp is released.
		op := ""
		if t.Operation != nil {
			op = t.Operation.Name
		}
		b.o.Snapshots.CaptureCall(cr, resp, err, op, start, elapsed)
	}
	switch {
	case errors.Is(err, proxy.ErrNoRoute):
		return mcp.UpstreamResponse{}, mcp.ErrUnknownTool
	case err != nil:
		status := http.StatusBadGateway
		if strings.Contains(err.Error(), "did not answer") {
			status = http.StatusGatewayTimeout
		}
		h.series.Observe(status, elapsed)
		h.series.Errors.Add(1)
		return mcp.UpstreamResponse{}, err
	case resp.Refused != nil:
		rej := resp.Refused
		resp.Release()
		h.series.Observe(rej.Status, elapsed)
		h.series.Errors.Add(1)
		if rej.Status == http.StatusTooManyRequests {
			h.series.Limited.Add(1)
		}
		return mcp.UpstreamResponse{}, refusal(rej)
	}
	h.series.Observe(resp.Status, elapsed)
	if resp.Status < 200 || resp.Status > 299 {
		h.series.Errors.Add(1)
	}
	return mcp.UpstreamResponse{Status: resp.Status, ContentType: resp.ContentType, Body: resp.Body,
		Truncated: resp.Truncated, Size: resp.BodyLen, Release: resp.Release}, nil
}

// refusal turns the gateway's own refusal into the text the model sees
// (after "Upstream request failed: "): what refused and when to retry.
func refusal(rej *proxy.Rejection) error {
	msg := rej.Message
	if rej.Code == "rate_limited" {
		msg = "rate limit exceeded (" + rej.Message + " limit)"
	}
	s := fmt.Sprintf("not sent: the gateway refused the call (HTTP %d %s): %s", rej.Status, rej.Code, msg)
	if rej.RetryAfter > 0 {
		s += fmt.Sprintf("; retry after %d s", int64((rej.RetryAfter+time.Second-1)/time.Second))
	}
	return errors.New(s)
}

// Info reports platform status for stoa_platform_info. Tenants see
// component states; admins also see their details.
func (b *backend) Info(c mcp.Caller) mcp.PlatformInfo {
	p := b.o.Platform
	health := "ok"
	if !p.Ready() {
		health = "starting"
	}
	st := p.Status()
	comps := map[string]any{}
	for _, s := range st.Components {
		if s.Name == "federation" && !c.Admin && b.fed != nil {
			// A tenant sees the health of its own federated servers only:
			// another tenant's server being down is neither its
			// business nor its degradation.
			state, has := tenantFederationState(b.fed.Upstreams(), c.Tenant)
			if !has {
				continue
			}
			s.State = state
		}
		// "off" (e.g. XDP without privileges) is a choice, not a fault.
		if s.State != "ok" && s.State != "off" && health == "ok" {
			health = "degraded"
		}
		if c.Admin {
			comps[s.Name] = map[string]any{"state": s.State, "detail": s.Detail}
		} else {
			comps[s.Name] = s.State
		}
	}
	return mcp.PlatformInfo{
		Version:  version.Version,
		Health:   health,
		Revision: st.Revision,
		Details: map[string]any{
			"components": comps,
			"uptime":     time.Since(st.StartedAt).Round(time.Second).String(),
		},
	}
}
