package localapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/xdp"
	"github.com/stoa-gateway/stoa/pkg/xdp/xdprt"
)

type xdpAPI struct{ x XDP }

func toAPIBlock(b xdp.Block, now time.Time) api.XDPBlock {
	left := b.Until.Sub(now).Seconds()
	return api.XDPBlock{Source: b.Prefix.String(), Reason: b.Reason, Until: b.Until.UTC(),
		ExpiresInSeconds: float64(int64(max(left, 0)*10)) / 10}
}

func badSource(err error) error {
	return apiError(api.CodeBadRequest, err.Error(), "give a CIDR such as 198.51.100.0/24 or 2001:db8::/48, or one address")
}

func (x xdpAPI) status(w http.ResponseWriter, r *http.Request, p Peer) error {
	return WriteJSON(w, http.StatusOK, x.x.Report())
}

func (x xdpAPI) blocks(w http.ResponseWriter, r *http.Request, p Peer) error {
	now := time.Now()
	out := api.XDPBlockList{Items: []api.XDPBlock{}}
	for _, b := range x.x.Blocks() {
		out.Items = append(out.Items, toAPIBlock(b, now))
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (x xdpAPI) block(w http.ResponseWriter, r *http.Request, p Peer) error {
	var in api.XDPBlockRequest
	if err := DecodeBody(r, w, &in); err != nil {
		return err
	}
	pfx, err := xdprt.ParseSource(in.CIDR)
	if err != nil {
		return badSource(err)
	}
	if in.For == "" {
		return apiError(api.CodeBadRequest, "block: missing duration", "say how long, e.g. --for 10m")
	}
	badDuration := apiError(api.CodeBadRequest, fmt.Sprintf("block: duration %q must be positive and at most 366d", in.For),
		"e.g. 10m, 2h or 7d; to drop a source for good, add it to spec.xdp.deny in the Gateway")
	dur, err := spec.NewDuration(in.For)
	if err != nil {
		return badDuration
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		reason = "blocked by " + p.Actor
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	if err := x.x.Block(pfx, dur.D(), reason, p.Actor); errors.Is(err, xdprt.ErrBadDuration) {
		return badDuration
	} else if err != nil {
		return err
	}
	now := time.Now()
	cp := xdprt.CanonicalSource(pfx)
	for _, b := range x.x.Blocks() {
		if b.Prefix == cp {
			return WriteJSON(w, http.StatusOK, toAPIBlock(b, now))
		}
	}
	// Gone already (a concurrent unblock): report what was asked.
	return WriteJSON(w, http.StatusOK, api.XDPBlock{Source: cp.String(), Reason: reason, Until: now.Add(dur.D()).UTC()})
}

func (x xdpAPI) unblock(w http.ResponseWriter, r *http.Request, p Peer) error {
	cidr := r.URL.Query().Get("cidr")
	if cidr == "" && r.ContentLength != 0 {
		var in api.XDPUnblockRequest
		if err := DecodeBody(r, w, &in); err != nil {
			return err
		}
		cidr = in.CIDR
	}
	if cidr == "" {
		return apiError(api.CodeBadRequest, "unblock: missing cidr", "list blocks with: stoa xdp blocks")
	}
	pfx, err := xdprt.ParseSource(cidr)
	if err != nil {
		return badSource(err)
	}
	removed, err := x.x.Unblock(pfx, p.Actor)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, api.XDPUnblockResponse{Source: xdprt.CanonicalSource(pfx).String(), Removed: removed})
}
