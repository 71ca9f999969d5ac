package localapi

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// traceCaller sets what c's change span needs from the request: its W3C
// trace context and how the peer connected. A peer on the unix socket is
// local (trusted like a trusted proxy); any other is judged by its
// address under the Gateway's accept policy. A repeated traceparent is
// invalid (W3C Trace Context): the change starts a new trace.
func traceCaller(c *Caller, r *http.Request, p Peer) {
	c.ActorKind = p.kind()
	in := &tracing.Incoming{Local: p.Unix != nil}
	if tp := r.Header.Values(tracing.HeaderTraceparent); len(tp) == 1 {
		in.Traceparent = []byte(tp[0])
		// Several tracestate fields are one list (RFC 9110 field lines).
		if ts := r.Header.Values(tracing.HeaderTracestate); len(ts) > 0 {
			in.Tracestate = []byte(strings.Join(ts, ","))
		}
	}
	if !in.Local {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			in.Peer = ap.Addr().Unmap()
		}
	}
	c.Trace = in
}

// kind is how p connected, for traces and never who it is.
func (p Peer) kind() string {
	switch {
	case p.Token != nil:
		return "token"
	case p.Unix != nil:
		return "socket"
	}
	return "local"
}
