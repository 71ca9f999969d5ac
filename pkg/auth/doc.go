// Package auth authenticates callers of the proxy and the MCP server.
//
// Two kinds of credential are understood:
//
//   - API keys of the form stoa_sk_<id>_<secret><checksum> (see GenerateKey),
//     sent as "X-Api-Key: <key>" or "Authorization: Bearer <key>". Only a
//     SHA-256 hash of each key is stored; a KeyIndex (an immutable snapshot
//     swapped atomically when keys change) finds a key by its public id and
//     compares hashes in constant time, without allocating.
//   - JWT bearer tokens from OIDC issuers. A Resolver, built from the
//     tenants' identity settings, routes a token to the one issuer that may
//     have signed it (unknown issuers are rejected before any network call),
//     verifies it against that issuer's JWKS (fetched through discovery and
//     refreshed at a bounded rate), checks its claims and maps it to a
//     tenant or to a platform admin. Verified tokens are cached by the
//     SHA-256 of their bytes, so a repeated token costs one hash and one map
//     lookup.
//
// Every failure is reported as one of the sentinel errors below, wrapped
// with detail that is safe to log (never a token or key, at most a key's
// public id). Callers answer clients with HTTPStatus and Challenge, which do
// not reveal which check failed.
//
// docs/auth.md describes the key format, the hashing choice, the JWKS
// refresh policy, the failure modes and what is cached for how long.
package auth
