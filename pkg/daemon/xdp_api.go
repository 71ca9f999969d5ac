package daemon

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// maxBlockFor bounds an operator's block; longer means the source belongs
// in spec.xdp.deny, which survives restarts.
const maxBlockFor = 366 * 24 * time.Hour

// registerAPI adds the XDP routes to the LocalAPI.
func (r *xdpRuntime) registerAPI() {
	r.d.HandleAPI("GET "+api.PathXDPStatus, func(w http.ResponseWriter, _ *http.Request, _ Peer) error {
		return WriteJSON(w, http.StatusOK, r.xdpStatus())
	})
	r.d.HandleAPI("GET "+api.PathXDPBlocks, func(w http.ResponseWriter, _ *http.Request, _ Peer) error {
		return WriteJSON(w, http.StatusOK, r.blockList(time.Now()))
	})
	r.d.HandleAPI("POST "+api.PathXDPBlocks, r.serveBlock)
	r.d.HandleAPI("DELETE "+api.PathXDPBlocks, r.serveUnblock)
	r.d.HandleAPI("POST "+api.PathXDPUnblock, r.serveUnblock)
}

func badSource(err error) error {
	return apiError(api.CodeBadRequest, err.Error(), "give a CIDR such as 198.51.100.0/24 or 2001:db8::/48, or one address")
}

func (r *xdpRuntime) serveBlock(w http.ResponseWriter, req *http.Request, p Peer) error {
	var in api.XDPBlockRequest
	if err := DecodeBody(req, w, &in); err != nil {
		return err
	}
	pfx, err := parseSource(in.CIDR)
	if err != nil {
		return badSource(err)
	}
	if in.For == "" {
		return apiError(api.CodeBadRequest, "block: missing duration", "say how long, e.g. --for 10m")
	}
	dur, err := spec.NewDuration(in.For)
	d := dur.D()
	if err != nil || d <= 0 || d > maxBlockFor {
		return apiError(api.CodeBadRequest, fmt.Sprintf("block: duration %q must be positive and at most 366d", in.For),
			"e.g. 10m, 2h or 7d; to drop a source for good, add it to spec.xdp.deny in the Gateway")
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		reason = "blocked by " + p.Actor()
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	_, err = r.attributed(blockOrigin{prefix: pfx, added: true, by: "operator", actor: p.Actor()},
		func() error { return r.l.Block(pfx, d, reason) })
	if err != nil {
		return err
	}
	now := time.Now()
	cp := canonicalSource(pfx)
	for _, b := range r.l.Blocks() {
		if b.Prefix == cp {
			return WriteJSON(w, http.StatusOK, apiBlock(b, now))
		}
	}
	// Gone already (a concurrent unblock): report what was asked.
	return WriteJSON(w, http.StatusOK, api.XDPBlock{Source: cp.String(), Reason: reason, Until: now.Add(d).UTC()})
}

func (r *xdpRuntime) serveUnblock(w http.ResponseWriter, req *http.Request, p Peer) error {
	cidr := req.URL.Query().Get("cidr")
	if cidr == "" && req.ContentLength != 0 {
		var in api.XDPUnblockRequest
		if err := DecodeBody(req, w, &in); err != nil {
			return err
		}
		cidr = in.CIDR
	}
	if cidr == "" {
		return apiError(api.CodeBadRequest, "unblock: missing cidr", "list blocks with: stoa xdp blocks")
	}
	pfx, err := parseSource(cidr)
	if err != nil {
		return badSource(err)
	}
	removed, err := r.attributed(blockOrigin{prefix: pfx, added: false, by: "operator", actor: p.Actor()},
		func() error { return r.l.Unblock(pfx) })
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, api.XDPUnblockResponse{Source: canonicalSource(pfx).String(), Removed: removed})
}
