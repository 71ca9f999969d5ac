// Package rbac decides what the caller of a remote control plane may do.
//
// The control plane serves the LocalAPI's routes over HTTPS; pkg/auth has
// verified the caller's OIDC token (issuer, audience, expiry, signature)
// before this package sees it as an Identity. Roles come from bindings in
// the specs, compiled once per revision into Bindings:
//
//   - cluster admin: the Gateway's spec.access.admins, plus the bootstrap
//     matchers from stoad's flags (no Gateway exists before the first apply);
//   - per tenant viewer < editor < admin: each Tenant's spec.access.
//
// Authorizer.Roles turns an Identity into Grants (cluster admin or not, the
// highest role per tenant) with a few map lookups and no allocation in the
// common case, since it runs on every request. Grants answer route-level
// questions (Allows, Check), list filtering (Sees, SeesObject, Readable)
// and the all-or-nothing checks of applies, deletes and rollbacks
// (CheckChanges, CheckPreview, CheckRollback), whose errors name every
// refused object and the role it needs without naming objects the caller
// may not see.
//
// The package is a leaf: it imports nothing of stoa, so the daemon maps its
// spec types onto AccessEntry, Matchers and Change. docs/fleet.md ("Roles")
// documents the rules and the route → role table (Routes).
package rbac
