package rbac

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
)

// DefaultGroupsClaim is the claim holding a token's groups unless the
// Gateway's spec.access.groupsClaim names another.
const DefaultGroupsClaim = "groups"

// Matchers select tokens: a token matches if ANY of its matchers does —
// one of Groups is in the token's groups claim, Subjects holds its "sub",
// or every one of Claims equals the token's claim (or is contained in it
// when the claim is an array). A group or subject written "ISSUER#VALUE"
// (ISSUER an http(s) URL) matches only tokens of that issuer; claims are
// pinned by listing "iss" among them.
type Matchers struct {
	Groups   []string          `json:"groups,omitempty"`
	Subjects []string          `json:"subjects,omitempty"`
	Claims   map[string]string `json:"claims,omitempty"`
}

// AccessEntry is one item of a Tenant's spec.access: Role (viewer, editor
// or admin) for the tokens its matchers select.
type AccessEntry struct {
	Role     string            `json:"role"`
	Groups   []string          `json:"groups,omitempty"`
	Subjects []string          `json:"subjects,omitempty"`
	Claims   map[string]string `json:"claims,omitempty"`
}

// GatewayAccess is the Gateway's spec.access: its cluster admins and the
// claim holding a token's groups.
type GatewayAccess struct {
	Admins      Matchers `json:"admins"`
	GroupsClaim string   `json:"groupsClaim,omitempty"`
}

// Config is everything bindings are compiled from.
type Config struct {
	// Tenants maps each tenant to its spec.access.
	Tenants map[string][]AccessEntry
	// Gateway is the Gateway's spec.access (zero without a Gateway).
	Gateway GatewayAccess
	// Bootstrap are cluster admins from stoad's flags (--admin-group,
	// --admin-subject). They hold as long as the flags are given, Gateway
	// or not: they are the way in before the first apply and the break
	// glass after a bad one.
	Bootstrap Matchers
	// GroupsClaim is used when the Gateway names none (a flag); empty
	// means DefaultGroupsClaim.
	GroupsClaim string
	// Issuers, when set, are the issuers the control plane accepts tokens
	// from. A pin naming another issuer is an error (it can never match);
	// with more than one issuer every matcher must be pinned, or a user of
	// one issuer could claim the groups of another's.
	Issuers []string
}

// grant is one binding's effect: a role on a tenant, or cluster admin,
// optionally only for tokens of one issuer.
type grant struct {
	issuer  string // "" = any trusted issuer
	tenant  string
	role    Role
	cluster bool
}

// claimGrant is a claims binding indexed by one of its claims; rest are
// the others, all of which must match too.
type claimGrant struct {
	grant
	rest []claimPair
}

type claimPair struct{ name, value string }

// Bindings are compiled role bindings, indexed by group, subject and
// claim so that finding a token's roles costs a lookup per group the
// token carries (plus one per distinct claim name used in bindings), not
// a scan of every tenant's entries. Bindings are immutable.
type Bindings struct {
	groupsClaim string
	groups      map[string][]grant
	subjects    map[string][]grant
	claimNames  []string
	claims      map[string]map[string][]claimGrant
}

// Problem is one invalid binding. Where is "Tenant acme", "Gateway" or
// "flags"; Path is the field ("spec.access[0].groups[1]", "--admin-group").
type Problem struct {
	Where   string
	Tenant  string
	Path    string
	Message string
	Hint    string
}

func (p Problem) String() string {
	s := p.Where + ": " + p.Path + ": " + p.Message
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// CompileError lists every invalid binding.
type CompileError struct{ Problems []Problem }

func (e *CompileError) Error() string {
	if len(e.Problems) == 1 {
		return "compile role bindings: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "compile role bindings: %d problems", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

type compiler struct {
	b        *Bindings
	issuers  map[string]bool
	multi    bool
	problems []Problem
}

// Compile validates cfg and builds its index. Every invalid binding is
// reported (as a *CompileError), not just the first.
func Compile(cfg Config) (*Bindings, error) {
	c := &compiler{b: &Bindings{
		groupsClaim: DefaultGroupsClaim,
		groups:      map[string][]grant{},
		subjects:    map[string][]grant{},
		claims:      map[string]map[string][]claimGrant{},
	}}
	if cfg.GroupsClaim != "" {
		c.b.groupsClaim = cfg.GroupsClaim
	}
	if cfg.Gateway.GroupsClaim != "" {
		c.b.groupsClaim = cfg.Gateway.GroupsClaim
	}
	if len(cfg.Issuers) > 0 {
		c.issuers = map[string]bool{}
		for _, iss := range cfg.Issuers {
			c.issuers[iss] = true
		}
		c.multi = len(c.issuers) > 1
	}

	c.matchers("flags", "", "--admin-", cfg.Bootstrap, grant{cluster: true}, true)
	c.matchers("Gateway", "", "spec.access.admins.", cfg.Gateway.Admins, grant{cluster: true}, false)
	names := make([]string, 0, len(cfg.Tenants))
	for t := range cfg.Tenants {
		names = append(names, t)
	}
	sort.Strings(names) // problems in a stable order
	for _, t := range names {
		where := "Tenant " + t
		if t == "" {
			c.problem(where, t, "metadata.name", "access entries for a tenant without a name", "")
			continue
		}
		for i, e := range cfg.Tenants[t] {
			path := fmt.Sprintf("spec.access[%d].", i)
			role, ok := ParseRole(e.Role)
			if !ok {
				c.problem(where, t, path+"role", fmt.Sprintf("unknown role %q", e.Role), "roles: viewer, editor, admin")
				continue
			}
			c.matchers(where, t, path, Matchers{Groups: e.Groups, Subjects: e.Subjects, Claims: e.Claims},
				grant{tenant: t, role: role}, false)
		}
	}
	for name := range c.b.claims {
		c.b.claimNames = append(c.b.claimNames, name)
	}
	sort.Strings(c.b.claimNames)
	if len(c.problems) > 0 {
		return nil, &CompileError{Problems: c.problems}
	}
	return c.b, nil
}

func (c *compiler) problem(where, tenant, path, msg, hint string) {
	c.problems = append(c.problems, Problem{Where: where, Tenant: tenant, Path: path, Message: msg, Hint: hint})
}

// matchers indexes one set of matchers granting g. For the flags, prefix
// names the flag ("--admin-" + "group").
func (c *compiler) matchers(where, tenant, prefix string, m Matchers, g grant, flags bool) {
	path := func(field string, i int) string {
		if flags {
			return prefix + strings.TrimSuffix(field, "s")
		}
		return fmt.Sprintf("%s%s[%d]", prefix, field, i)
	}
	if !flags && tenant != "" && len(m.Groups) == 0 && len(m.Subjects) == 0 && len(m.Claims) == 0 {
		c.problem(where, tenant, strings.TrimSuffix(prefix, "."), "access entry matches nobody",
			"give it groups, subjects or claims")
		return
	}
	for i, v := range m.Groups {
		if gi, ok := c.value(where, tenant, path("groups", i), "group", v); ok {
			c.b.groups[gi.value] = append(c.b.groups[gi.value], gi.with(g))
		}
	}
	for i, v := range m.Subjects {
		if si, ok := c.value(where, tenant, path("subjects", i), "subject", v); ok {
			c.b.subjects[si.value] = append(c.b.subjects[si.value], si.with(g))
		}
	}
	if len(m.Claims) > 0 {
		c.claims(where, tenant, prefix+"claims", m.Claims, g)
	}
}

type pinnedValue struct{ issuer, value string }

func (p pinnedValue) with(g grant) grant {
	g.issuer = p.issuer
	return g
}

// value checks one group or subject and splits its issuer pin.
func (c *compiler) value(where, tenant, path, what, v string) (pinnedValue, bool) {
	iss, val, pin := pinned(v)
	switch {
	case strings.TrimSpace(v) == "":
		c.problem(where, tenant, path, "empty "+what, "")
		return pinnedValue{}, false
	case v != strings.TrimSpace(v):
		c.problem(where, tenant, path, fmt.Sprintf("%s %q has surrounding spaces", what, v), "tokens never carry them; remove them")
		return pinnedValue{}, false
	case pin && val == "":
		c.problem(where, tenant, path, fmt.Sprintf("%s %q pins issuer %s but names no %s", what, v, iss, what),
			"write ISSUER#"+strings.ToUpper(what))
		return pinnedValue{}, false
	case pin && c.issuers != nil && !c.issuers[iss]:
		c.problem(where, tenant, path, fmt.Sprintf("%s %q is pinned to issuer %s, which this control plane does not trust", what, v, iss),
			"it can never match; trusted issuers: "+c.issuerList())
		return pinnedValue{}, false
	case !pin && c.multi:
		c.problem(where, tenant, path, fmt.Sprintf("%s %q matches tokens of every trusted issuer", what, v),
			"this control plane trusts several issuers; pin it as ISSUER#"+v+" (issuers: "+c.issuerList()+")")
		return pinnedValue{}, false
	}
	return pinnedValue{iss, val}, true
}

func (c *compiler) issuerList() string {
	out := make([]string, 0, len(c.issuers))
	for iss := range c.issuers {
		out = append(out, iss)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// claims indexes a claims matcher by its first claim name (in sorted
// order); the others are checked when that one matches.
func (c *compiler) claims(where, tenant, path string, m map[string]string, g grant) {
	pairs := make([]claimPair, 0, len(m))
	for name, value := range m {
		pairs = append(pairs, claimPair{name, value})
	}
	slices.SortFunc(pairs, func(a, b claimPair) int { return strings.Compare(a.name, b.name) })
	ok := true
	for _, p := range pairs {
		switch {
		case p.name == "":
			c.problem(where, tenant, path, "claim with an empty name", "")
			ok = false
		case p.value == "":
			c.problem(where, tenant, path+"."+p.name, "empty claim value", "a binding must name the value the claim has")
			ok = false
		}
	}
	if !ok {
		return
	}
	iss, pinnedIss := m["iss"]
	switch {
	case pinnedIss && c.issuers != nil && !c.issuers[iss]:
		c.problem(where, tenant, path+".iss", fmt.Sprintf("claims are pinned to issuer %s, which this control plane does not trust", iss),
			"they can never match; trusted issuers: "+c.issuerList())
		return
	case !pinnedIss && c.multi:
		c.problem(where, tenant, path, "claims match tokens of every trusted issuer",
			"this control plane trusts several issuers; add iss: ISSUER to the claims (issuers: "+c.issuerList()+")")
		return
	}
	first := pairs[0]
	byValue := c.b.claims[first.name]
	if byValue == nil {
		byValue = map[string][]claimGrant{}
		c.b.claims[first.name] = byValue
	}
	byValue[first.value] = append(byValue[first.value], claimGrant{grant: g, rest: pairs[1:]})
}

// GroupsClaim is the claim the bindings read a token's groups from.
func (b *Bindings) GroupsClaim() string { return b.groupsClaim }

// Roles computes the caller's grants. It does not allocate unless the
// caller holds roles on more tenants than Grants keeps inline.
func (b *Bindings) Roles(id Identity) Grants {
	if b == nil {
		return Grants{id: id, groupsClaim: DefaultGroupsClaim}
	}
	g := Grants{id: id, groupsClaim: b.groupsClaim}
	if v, ok := id.claim(b.groupsClaim); ok {
		eachGroup(v, func(s string) bool {
			for _, gr := range b.groups[s] {
				g.add(gr)
			}
			return !g.cluster
		})
	}
	if !g.cluster && id.Subject != "" {
		for _, gr := range b.subjects[id.Subject] {
			g.add(gr)
		}
	}
	for _, name := range b.claimNames {
		if g.cluster {
			break
		}
		v, ok := id.claim(name)
		if !ok {
			continue
		}
		byValue := b.claims[name]
		eachClaimValue(v, func(s string) bool {
			for i := range byValue[s] {
				cg := &byValue[s][i]
				if cg.matchesRest(&id) {
					g.add(cg.grant)
				}
			}
			return !g.cluster
		})
	}
	return g
}

func (cg *claimGrant) matchesRest(id *Identity) bool {
	for _, p := range cg.rest {
		if !id.claimMatches(p.name, p.value) {
			return false
		}
	}
	return true
}

// Authorizer holds the bindings in force; the daemon swaps in new ones
// after each revision, and requests in flight keep the ones they read.
type Authorizer struct {
	b atomic.Pointer[Bindings]
}

// NewAuthorizer returns an Authorizer using b.
func NewAuthorizer(b *Bindings) *Authorizer {
	a := &Authorizer{}
	a.b.Store(b)
	return a
}

// Set replaces the bindings.
func (a *Authorizer) Set(b *Bindings) { a.b.Store(b) }

// Bindings returns the bindings in force.
func (a *Authorizer) Bindings() *Bindings { return a.b.Load() }

// Roles computes the caller's grants under the bindings in force.
func (a *Authorizer) Roles(id Identity) Grants { return a.b.Load().Roles(id) }
