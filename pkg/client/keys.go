package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// KeysOptions select API keys; empty fields match every key.
type KeysOptions struct {
	Namespace, Consumer string
}

// Keys lists API keys.
func (c routes) Keys(ctx context.Context, o KeysOptions) (*api.KeyList, error) {
	q := url.Values{}
	if o.Namespace != "" {
		q.Set("namespace", o.Namespace)
	}
	if o.Consumer != "" {
		q.Set("consumer", o.Consumer)
	}
	p := api.PathKeys
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var l api.KeyList
	return &l, c.tr.do(ctx, http.MethodGet, p, nil, &l)
}

// CreateKey creates an API key; the answer carries the key, the only time
// it is ever returned.
func (c routes) CreateKey(ctx context.Context, req *api.KeyCreateRequest) (*api.KeyCreateResponse, error) {
	var r api.KeyCreateResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathKeys, req, &r)
}

// RevokeKey revokes a key at once.
func (c routes) RevokeKey(ctx context.Context, id string) (*api.KeyInfo, error) {
	var info api.KeyInfo
	return &info, c.tr.do(ctx, http.MethodPost, api.PathKeys+"/"+url.PathEscape(id)+"/revoke", struct{}{}, &info)
}

// RotateKey creates the successor of a key; the old one keeps working for
// req.Grace.
func (c routes) RotateKey(ctx context.Context, id string, req *api.KeyRotateRequest) (*api.KeyRotateResponse, error) {
	var r api.KeyRotateResponse
	return &r, c.tr.do(ctx, http.MethodPost, api.PathKeys+"/"+url.PathEscape(id)+"/rotate", req, &r)
}
