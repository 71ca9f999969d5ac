package client

import (
	"context"
	"net/http"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// XDPStatus returns the XDP limiter's status: mode, interfaces, policy,
// counters, blocks, top sources, and why XDP is off when it is.
func (c routes) XDPStatus(ctx context.Context) (*api.XDPStatus, error) {
	var s api.XDPStatus
	return &s, c.tr.do(ctx, http.MethodGet, api.PathXDPStatus, nil, &s)
}

// XDPBlocks lists the timed blocks in force.
func (c routes) XDPBlocks(ctx context.Context) (*api.XDPBlockList, error) {
	var l api.XDPBlockList
	return &l, c.tr.do(ctx, http.MethodGet, api.PathXDPBlocks, nil, &l)
}

// XDPBlock blocks a source prefix (or one address) for req.For.
func (c routes) XDPBlock(ctx context.Context, req *api.XDPBlockRequest) (*api.XDPBlock, error) {
	var b api.XDPBlock
	return &b, c.tr.do(ctx, http.MethodPost, api.PathXDPBlocks, req, &b)
}

// XDPUnblock lifts the block on a prefix; Removed is false when there was
// none.
func (c routes) XDPUnblock(ctx context.Context, cidr string) (*api.XDPUnblockResponse, error) {
	var r api.XDPUnblockResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathXDPUnblock, api.XDPUnblockRequest{CIDR: cidr}, &r)
}
