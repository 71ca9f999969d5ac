package spec

import (
	"fmt"
	"slices"
	"strings"
)

// Control-plane roles. A tenant's roles are cumulative: an editor may do
// what a viewer may, an admin what an editor may.
const (
	RoleViewer = "viewer"
	RoleEditor = "editor"
	RoleAdmin  = "admin"
)

// accessRoles are the roles a Tenant's access entries grant.
var accessRoles = []string{"viewer", "editor", "admin"}

// SplitSubject splits an access subject into the issuer it is pinned to
// and the sub it matches. A subject that starts with http:// or https:// is
// ISSUER#SUB, split at the first '#' (an issuer URL has no fragment, so the
// '#' cannot be part of it); any other subject is a bare sub, matched in
// tokens of every issuer, and issuer is "".
func SplitSubject(s string) (issuer, sub string) {
	if !pinnedSubject(s) {
		return "", s
	}
	issuer, sub, _ = strings.Cut(s, "#")
	return issuer, sub
}

func pinnedSubject(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://")
}

// tenantAccess checks a Tenant's access entries.
func (v *validator) tenantAccess(o *Object, entries []AccessEntry) {
	seen := map[string]int{}
	for i := range entries {
		e := &entries[i]
		p := itemPath("spec.access", i)
		role := e.Role
		switch {
		case e.Role == "":
			v.errorf(o, p+".role", "one of "+strings.Join(accessRoles, ", "), "missing role")
			role = "a role"
		case e.Role == "cluster-admin" || e.Role == "clusterAdmin" || e.Role == "owner":
			v.errorf(o, p+".role", `a Tenant grants viewer, editor or admin on itself; cluster admins are named in the Gateway's spec.access.admins`,
				"unknown role %q", e.Role)
		default:
			v.oneOf(o, p+".role", "role", e.Role, accessRoles...)
		}
		v.accessMatch(o, p, "grants "+role+" to no one", e.Groups, e.Subjects, e.Claims)
		key := accessKey(e.Role, e.Groups, e.Subjects, e.Claims)
		if j, dup := seen[key]; dup {
			v.warnf(o, p, "remove one of them", "duplicate access entry (also %s)", itemPath("spec.access", j))
			continue
		}
		seen[key] = i
	}
}

// gatewayAccess checks the Gateway's access block: the cluster admins and
// the groups claim.
func (v *validator) gatewayAccess(o *Object, a *GatewayAccess) {
	if a == nil {
		return
	}
	if c := a.GroupsClaim; c != "" && (strings.TrimSpace(c) == "" || strings.ContainsAny(c, " \t\r\n")) {
		v.errorf(o, "spec.access.groupsClaim", "the name of the claim holding the groups, e.g. groups or realm_access.roles",
			"invalid claim name %q", c)
	}
	m := a.Admins
	if m == nil {
		return
	}
	const p = "spec.access.admins"
	v.accessMatch(o, p, "names no cluster admin", m.Groups, m.Subjects, m.Claims)
	// Cluster admin is every role on every tenant: like spec.admins, it
	// should not be granted to tokens of just any issuer the control plane
	// trusts, or a tenant running its own IdP could mint itself admin.
	// Each matcher is checked alone: they are alternatives, so an iss in
	// claims pins the claims matcher only.
	claim := a.GroupsClaim
	if claim == "" {
		claim = defaultGroupsClaim
	}
	var loose, fixes []string
	if len(m.Groups) > 0 {
		loose = append(loose, "groups")
		fixes = append(fixes, fmt.Sprintf("match groups with claims: {iss: https://idp.example.com, %s: %s}", claim, m.Groups[0]))
	}
	for _, s := range m.Subjects {
		if !pinnedSubject(s) {
			loose = append(loose, "subjects")
			fixes = append(fixes, fmt.Sprintf("write subjects as ISSUER#SUB, e.g. https://idp.example.com#%s", s))
			break
		}
	}
	if _, pinned := m.Claims["iss"]; len(m.Claims) > 0 && !pinned {
		loose = append(loose, "claims")
		fixes = append(fixes, "add iss: https://idp.example.com to claims")
	}
	if len(loose) == 0 {
		return
	}
	v.warnf(o, p, "pin the issuer: "+strings.Join(fixes, "; "),
		"cluster admins matched by %s are not pinned to an issuer: a token of any issuer the control plane trusts qualifies", strings.Join(loose, " and "))
}

// accessMatch checks one matcher: groups, subjects and claims, at least
// one of them. nobody completes the message when none is set.
func (v *validator) accessMatch(o *Object, p, nobody string, groups, subjects []string, claims map[string]string) {
	if len(groups) == 0 && len(subjects) == 0 && len(claims) == 0 {
		v.errorf(o, p, "match tokens with groups: [...], subjects: [...] or claims: {...}",
			"access entry %s: it needs groups, subjects or claims", nobody)
	}
	v.accessList(o, p+".groups", "group", groups)
	v.accessList(o, p+".subjects", "subject", subjects)
	for i, s := range subjects {
		if strings.TrimSpace(s) == "" || !pinnedSubject(s) {
			continue
		}
		sp := itemPath(p+".subjects", i)
		issuer, sub := SplitSubject(s)
		if !strings.Contains(s, "#") {
			v.errorf(o, sp, fmt.Sprintf("a subject that starts with a URL is ISSUER#SUB, e.g. %s#alice", issuer),
				"subject %q names an issuer but no sub", s)
			continue
		}
		if msg := urlProblem(issuer); msg != "" {
			v.errorf(o, sp, "write ISSUER#SUB with the issuer URL as tokens carry it in iss, e.g. https://idp.example.com/realms/acme#alice",
				"invalid issuer %q in subject %q: %s", issuer, s, msg)
		}
		if sub == "" {
			v.errorf(o, sp, fmt.Sprintf("write %s#SUB with the token's sub after '#'", issuer), "subject %q has an empty sub", s)
		}
	}
	for _, k := range sortedKeys(claims) {
		kp := p + ".claims" + pathKey(k)
		switch {
		case strings.TrimSpace(k) == "":
			v.add(o, SeverityError, true, kp, "the claim name, e.g. email or realm_access.roles", "empty claim name")
		case claims[k] == "":
			v.errorf(o, kp, "the value the claim must equal (or, for an array claim, contain)", "empty value for claim %q", k)
		}
	}
}

// accessList checks a list of groups or subjects: no empty entry; a
// duplicate is harmless and warned.
func (v *validator) accessList(o *Object, path, what string, list []string) {
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			v.errorf(o, itemPath(path, i), "remove the empty entry", "empty %s", what)
			continue
		}
		if j := slices.Index(list[:i], s); j >= 0 {
			v.warnf(o, itemPath(path, i), "remove one of them", "duplicate %s %q (also %s)", what, s, itemPath(path, j))
		}
	}
}

// accessKey identifies an entry by its role and matchers, whatever their
// order.
func accessKey(role string, groups, subjects []string, claims map[string]string) string {
	g := slices.Sorted(slices.Values(groups))
	s := slices.Sorted(slices.Values(subjects))
	var b strings.Builder
	fmt.Fprintf(&b, "%q|%q|%q|", role, g, s)
	for _, k := range sortedKeys(claims) {
		fmt.Fprintf(&b, "%q=%q,", k, claims[k])
	}
	return b.String()
}
