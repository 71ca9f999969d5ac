package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// DataPlanes lists the data planes a control plane knows (none on a
// standalone stoad).
func (c routes) DataPlanes(ctx context.Context) (*fleet.DataPlaneList, error) {
	var l fleet.DataPlaneList
	return &l, c.tr.do(ctx, http.MethodGet, api.PathDataPlanes, nil, &l)
}

// CreateJoinToken makes a join token; the answer is the only one that
// carries its secret.
func (c routes) CreateJoinToken(ctx context.Context, req *api.JoinTokenCreateRequest) (*fleet.NewJoinToken, error) {
	var t fleet.NewJoinToken
	return &t, c.tr.do(ctx, http.MethodPost, api.PathJoinTokens, req, &t)
}

// JoinTokens lists the join tokens (never their secrets).
func (c routes) JoinTokens(ctx context.Context) (*api.JoinTokenList, error) {
	var l api.JoinTokenList
	return &l, c.tr.do(ctx, http.MethodGet, api.PathJoinTokens, nil, &l)
}

// RevokeJoinToken deletes the join token whose ID (or unique prefix of
// six or more hex digits) is id.
func (c routes) RevokeJoinToken(ctx context.Context, id string) (*api.JoinTokenRevokeResponse, error) {
	var r api.JoinTokenRevokeResponse
	return &r, c.tr.do(ctx, http.MethodDelete, api.PathJoinTokens+"/"+url.PathEscape(id), nil, &r)
}

// RevokeDataPlane revokes a data plane's identity: its certificates are
// refused from its next request on.
func (c routes) RevokeDataPlane(ctx context.Context, name string) (*api.DataPlaneRevokeResponse, error) {
	var r api.DataPlaneRevokeResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathDataPlanes+"/"+url.PathEscape(name)+"/revoke", nil, &r)
}
