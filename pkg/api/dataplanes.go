package api

import "github.com/stoa-gateway/stoa/pkg/fleet"

// Fleet management through the LocalAPI (the CLI's `stoa get dataplanes`
// and `stoa fleet join-token …`), with bearer tokens and roles like every
// other route; the data planes' own routes are under fleet.PathPrefix.
const (
	// PathDataPlanes serves GET: a fleet.DataPlaneList (empty on a stoad
	// that is not a control plane); POST PathDataPlanes/{name}/revoke
	// revokes one (DataPlaneRevokeResponse).
	PathDataPlanes = "/v1/dataplanes"
	// PathJoinTokens serves GET (JoinTokenList), POST
	// (JoinTokenCreateRequest → fleet.NewJoinToken, the only answer
	// carrying the secret) and, as PathJoinTokens/{id}, DELETE (revoke).
	PathJoinTokens = "/v1/join-tokens"
)

// KindDataPlaneList is the kind of `stoa get dataplanes -o json|yaml`.
const KindDataPlaneList = "DataplaneList"

// JoinTokenCreateRequest is the body of POST /v1/join-tokens.
type JoinTokenCreateRequest struct {
	// Name, when set, is the only data plane name the token admits.
	Name string `json:"name,omitempty"`
	// TTL is how long the token may be used (Go duration, 1m to 168h;
	// default 1h).
	TTL string `json:"ttl,omitempty"`
}

// JoinTokenList is the answer of GET /v1/join-tokens.
type JoinTokenList struct {
	Items []fleet.JoinToken `json:"items"`
}

// DataPlaneRevokeResponse is the answer of POST
// /v1/dataplanes/{name}/revoke.
type DataPlaneRevokeResponse struct {
	Name    string `json:"name"`
	Revoked bool   `json:"revoked"`
}

// JoinTokenRevokeResponse is the answer of DELETE /v1/join-tokens/{id}.
type JoinTokenRevokeResponse struct {
	ID      string `json:"id"`
	Revoked bool   `json:"revoked"`
}
