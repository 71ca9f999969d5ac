package clitest

import (
	"context"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// DataPlanes implements client.API.
func (fa *FakeAPI) DataPlanes(ctx context.Context) (*fleet.DataPlaneList, error) {
	if err := fa.record("DataPlanes"); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.DataPlaneList), nil
}

// CreateJoinToken implements client.API: the token is added to
// JoinTokenList.
func (fa *FakeAPI) CreateJoinToken(ctx context.Context, req *api.JoinTokenCreateRequest) (*fleet.NewJoinToken, error) {
	if err := fa.record("CreateJoinToken", clone(*req)); err != nil {
		return nil, err
	}
	ttl := time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return nil, &api.Error{Code: api.CodeBadRequest, Message: "create join token: --ttl " + req.TTL + " is not a duration"}
		}
		ttl = d
	}
	info := fleet.JoinToken{ID: "9f86d081884c", Name: req.Name, CreatedAt: T0, ExpiresAt: T0.Add(ttl), CreatedBy: "alice", State: fleet.TokenActive}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	fa.JoinTokenList.Items = append(fa.JoinTokenList.Items, info)
	return &fleet.NewJoinToken{JoinToken: info, Token: "stoajoin_" + strings.Repeat("Q", 43)}, nil
}

// JoinTokens implements client.API.
func (fa *FakeAPI) JoinTokens(ctx context.Context) (*api.JoinTokenList, error) {
	if err := fa.record("JoinTokens"); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return clone(fa.JoinTokenList), nil
}

// RevokeJoinToken implements client.API: a token whose ID starts with id
// is removed; none is not_found.
func (fa *FakeAPI) RevokeJoinToken(ctx context.Context, id string) (*api.JoinTokenRevokeResponse, error) {
	if err := fa.record("RevokeJoinToken", id); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for i, t := range fa.JoinTokenList.Items {
		if strings.HasPrefix(t.ID, id) {
			fa.JoinTokenList.Items = append(fa.JoinTokenList.Items[:i], fa.JoinTokenList.Items[i+1:]...)
			return &api.JoinTokenRevokeResponse{ID: id, Revoked: true}, nil
		}
	}
	return nil, &api.Error{Code: api.CodeNotFound, Message: "revoke join token: no token " + id, Hint: "list the tokens: stoa fleet join-token list"}
}

// RevokeDataPlane implements client.API: the data plane's health becomes
// revoked; an unknown name is not_found.
func (fa *FakeAPI) RevokeDataPlane(ctx context.Context, name string) (*api.DataPlaneRevokeResponse, error) {
	if err := fa.record("RevokeDataPlane", name); err != nil {
		return nil, err
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for i, dp := range fa.DataPlaneList.Items {
		if dp.Name == name {
			fa.DataPlaneList.Items[i].Health = fleet.HealthRevoked
			return &api.DataPlaneRevokeResponse{Name: name, Revoked: true}, nil
		}
	}
	return nil, &api.Error{Code: api.CodeNotFound, Message: "revoke data plane: no data plane \"" + name + "\"", Hint: "list them: stoa get dataplanes"}
}
