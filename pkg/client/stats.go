package client

import (
	"context"
	"net/http"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// Stats returns one stats sample; stoad answers within about a second,
// once it has rates over a full interval.
func (c routes) Stats(ctx context.Context) (*api.StatsSample, error) {
	var s api.StatsSample
	return &s, c.tr.do(ctx, http.MethodGet, api.PathStats, nil, &s)
}

// FollowStats streams a stats sample about once a second to fn until the
// stream ends (stoad stopped), ctx is cancelled or fn returns an error.
// The first sample arrives at once and may carry no rates yet
// (IntervalSeconds 0).
func (c routes) FollowStats(ctx context.Context, fn func(*api.StatsSample) error) error {
	body, err := c.tr.stream(ctx, api.PathStats+"?follow=1")
	if err != nil {
		return err
	}
	defer body.Close()
	return DecodeNDJSON(body, func(s api.StatsSample) error { return fn(&s) })
}
