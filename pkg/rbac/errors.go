package rbac

import (
	"errors"
	"fmt"
	"strings"
)

// ErrForbidden matches every *ForbiddenError (errors.Is).
var ErrForbidden = errors.New("forbidden")

// ErrNotVisible says a record belongs to a tenant the caller may not read:
// answer as if it did not exist (404), so its existence is not revealed.
var ErrNotVisible = errors.New("not visible to the caller")

// maxGroupsShown bounds how many of the token's groups a message lists.
const maxGroupsShown = 10

// Refusal is one thing the caller may not do and what it needs: cluster
// admin, or Role on Tenant. AltTenantAdmin says a tenant's admin could do
// it too when the tenant exists (a Tenant object on a tenant the caller
// cannot see, so whether it exists is not revealed).
type Refusal struct {
	Cluster        bool
	Role           Role
	Tenant         string
	AltTenantAdmin Role
	What           string
}

// String is the refusal as one message line: "role editor on tenant acme
// required to update Tool acme/billing-api".
func (r Refusal) String() string {
	switch {
	case r.Cluster && r.AltTenantAdmin != RoleNone:
		return fmt.Sprintf("cluster admin (or role %s on tenant %s) required to %s", r.AltTenantAdmin, r.Tenant, r.What)
	case r.Cluster:
		return "cluster admin required to " + r.What
	}
	return fmt.Sprintf("role %s on tenant %s required to %s", r.Role, r.Tenant, r.What)
}

// checkMode is which check refused: it words the message's first line.
type checkMode uint8

const (
	modeRoute checkMode = iota
	modeApply
	modePreview
	modeRollback
)

// ForbiddenError is a refusal to answer with HTTP 403 (code "forbidden"):
// Message for the envelope's message, Hint for its hint. NoRole is set
// when the caller holds no role at all.
type ForbiddenError struct {
	Refusals []Refusal
	NoRole   bool

	mode                  checkMode
	issuer, subject       string
	groups                []string
	groupCount            int
	groupsClaim           string
	hasGroupsClaimInToken bool
}

func (g Grants) forbidden(mode checkMode, rs []Refusal) *ForbiddenError {
	e := &ForbiddenError{Refusals: rs, mode: mode, issuer: g.id.Issuer, subject: g.id.Subject, groupsClaim: g.groupsClaim}
	e.groups, e.groupCount = g.id.groups(g.groupsClaim, maxGroupsShown)
	_, e.hasGroupsClaimInToken = g.id.claim(g.groupsClaim)
	return e
}

func (g Grants) noRole() *ForbiddenError {
	e := g.forbidden(modeRoute, nil)
	e.NoRole = true
	return e
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// Error is the message and, for a caller without any role, the hint: that
// error is useless without it.
func (e *ForbiddenError) Error() string {
	if e.NoRole {
		return e.Message() + ": " + e.Hint()
	}
	return e.Message()
}

// Message names what is missing: every refused change with the role it
// needs, one per line after a first line when there are several.
func (e *ForbiddenError) Message() string {
	if e.NoRole {
		return fmt.Sprintf("token of subject %s (issuer %s) has no role", e.subject, e.issuer)
	}
	if len(e.Refusals) == 1 {
		return e.Refusals[0].String()
	}
	var b strings.Builder
	switch e.mode {
	case modeRollback:
		b.WriteString("rollback refused, nothing was changed:")
	case modePreview:
		b.WriteString("preview refused:")
	default:
		b.WriteString("refused whole, nothing was changed:")
	}
	fmt.Fprintf(&b, " %d changes need roles this token lacks", len(e.Refusals))
	for _, r := range e.Refusals {
		b.WriteString("\n  " + r.String())
	}
	return b.String()
}

// Hint says who grants what is missing, and what of the token could be
// bound.
func (e *ForbiddenError) Hint() string {
	what := e.bindable()
	if e.NoRole {
		return "ask an admin to bind " + what + " in a Tenant's spec.access or the Gateway's spec.access.admins"
	}
	var tenants []string
	cluster := false
	seen := map[string]bool{}
	for _, r := range e.Refusals {
		if r.Cluster && r.AltTenantAdmin == RoleNone {
			cluster = true
			continue
		}
		if !seen[r.Tenant] {
			seen[r.Tenant] = true
			tenants = append(tenants, r.Tenant)
		}
	}
	var parts []string
	switch len(tenants) {
	case 0:
	case 1:
		parts = append(parts, "ask an admin of tenant "+tenants[0]+" to bind "+what+" in Tenant "+tenants[0]+"'s spec.access")
	default:
		parts = append(parts, "ask the admins of tenants "+strings.Join(tenants, ", ")+" to bind "+what+" in each Tenant's spec.access")
	}
	if cluster {
		p := "cluster admins are bound in the Gateway's spec.access.admins"
		if len(tenants) == 0 {
			p = "ask a cluster admin to bind " + what + " in the Gateway's spec.access.admins"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// bindable describes what of the token a binding could name: its groups,
// else its issuer-pinned subject.
func (e *ForbiddenError) bindable() string {
	subject := "your subject " + e.issuer + "#" + e.subject
	if e.groupCount == 0 {
		if !e.hasGroupsClaimInToken {
			return subject + fmt.Sprintf(" (your token has no %q claim)", e.groupsClaim)
		}
		return subject + fmt.Sprintf(" (your token's %q claim is empty)", e.groupsClaim)
	}
	list := strings.Join(e.groups, ", ")
	if e.groupCount > len(e.groups) {
		list += fmt.Sprintf(", … %d more", e.groupCount-len(e.groups))
	}
	return "one of your groups [" + list + "] or " + subject
}
