// Package snapshot keeps error snapshots: on a 5xx, an upstream timeout or
// a connection failure (proxy and MCP), a redacted copy of the exchange —
// request and response line, headers, the start of both bodies, timing,
// upstream, tenant, consumer and revision — bounded per tenant by count,
// size and age, with a ready-to-run curl and a replay (see
// docs/snapshots.md).
//
// Capture is cheap on the request path: the caller copies what it needs
// into a Capture and hands it over; redaction and storage happen on a
// background goroutine behind a bounded queue that drops rather than
// blocks.
package snapshot

import (
	"net/url"
	"strings"
	"time"
)

// Header is one header field.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Redacted marks a value replaced (wholly or partly) by [REDACTED].
	Redacted bool `json:"redacted,omitempty"`
}

// Capture is the raw, unredacted material of a snapshot. Whoever fills it
// hands it over to Recorder.Capture and must not touch it afterwards.
// Bodies should be cut to the policy's MaxBodyBytes plus some margin
// (CaptureBodyLimit) by the caller; BodyLen carries the full length.
type Capture struct {
	Source    string // "proxy" or "mcp"
	Tenant    string
	Tool      string
	Operation string // MCP operation, if any
	Consumer  string
	Revision  int64
	RequestID string
	Upstream  string // upstream base URL chosen
	Reason    string // "5xx", "timeout", "connect", "reset", "no_healthy_upstream", "other"
	Err       string // transport error text
	Start     time.Time
	Duration  time.Duration
	// Origin says who made the error: OriginUpstream (an upstream was
	// tried) or OriginGateway (none was: no healthy upstream).
	Origin string
	// Route is the tool's route (path prefix), for grouping repeats.
	Route string

	Method string
	// URL is the absolute URL as sent upstream; for a gateway-made error
	// the URL the client called at the gateway.
	URL string
	// Target is the escaped path and query below the upstream's base path,
	// as the proxy maps it (what a replay sends); when empty it is derived
	// from URL and Upstream.
	Target string
	// Injected names the request headers the gateway set itself (context
	// headers, the upstream credential); a curl to the gateway leaves
	// them out.
	Injected       []string
	ReqHeaders     []Header
	ReqBody        []byte
	ReqBodyLen     int
	ReqContentType string

	Status          int // status answered to the client
	UpstreamStatus  int // status the upstream sent (0 when it did not answer)
	RespHeaders     []Header
	RespBody        []byte
	RespBodyLen     int
	RespContentType string
}

// Message is one side of the exchange as stored.
type Message struct {
	Method string `json:"method,omitempty"`
	// URL is the absolute URL sent upstream (secret query values
	// redacted).
	URL string `json:"url,omitempty"`
	// Target is the path and query below the upstream's base path, what a
	// replay appends to the tool's current upstream.
	Target string `json:"target,omitempty"`
	// Injected names headers the gateway set itself (see Capture).
	Injected []string `json:"injected,omitempty"`
	Status   int      `json:"status,omitempty"`
	Headers  []Header `json:"headers,omitempty"`
	Body     string   `json:"body,omitempty"`
	// BodyBytes is the full body length; Truncated says Body holds less.
	BodyBytes int  `json:"bodyBytes"`
	Truncated bool `json:"truncated,omitempty"`
	// Omitted says why no body is kept (binary content).
	Omitted string `json:"omitted,omitempty"`
}

// Snapshot is one stored, redacted error snapshot.
type Snapshot struct {
	ID        string        `json:"id"`
	Time      time.Time     `json:"time"`
	Source    string        `json:"source"`
	Tenant    string        `json:"tenant"`
	Tool      string        `json:"tool"`
	Operation string        `json:"operation,omitempty"`
	Consumer  string        `json:"consumer,omitempty"`
	Revision  int64         `json:"revision"`
	RequestID string        `json:"requestId,omitempty"`
	Upstream  string        `json:"upstream,omitempty"`
	Reason    string        `json:"reason"`
	Error     string        `json:"error,omitempty"`
	Duration  time.Duration `json:"durationNs"`
	// Origin is OriginUpstream or OriginGateway (see Capture).
	Origin string `json:"origin,omitempty"`
	// Route is the tool's route (path prefix).
	Route string `json:"route,omitempty"`
	// Count is how many failures this snapshot stands for: repeats of the
	// same failure (see GroupKey) within GroupWindow are counted here
	// instead of stored again; Time is the first, LastSeen the last.
	Count    int64     `json:"count,omitempty"`
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// UpstreamStatus is what the upstream answered (0: no answer);
	// Response.Status is what the client got.
	UpstreamStatus int      `json:"upstreamStatus,omitempty"`
	Request        Message  `json:"request"`
	Response       Message  `json:"response"`
	Redactions     []string `json:"redactions,omitempty"`
}

// Summary is a snapshot's line in a listing.
type Summary struct {
	ID        string        `json:"id"`
	Time      time.Time     `json:"time"`
	Tenant    string        `json:"tenant"`
	Tool      string        `json:"tool"`
	Consumer  string        `json:"consumer,omitempty"`
	Method    string        `json:"method"`
	Target    string        `json:"target"`
	Status    int           `json:"status"`
	Reason    string        `json:"reason"`
	Duration  time.Duration `json:"durationNs"`
	RequestID string        `json:"requestId,omitempty"`
	Count     int64         `json:"count"`
	LastSeen  time.Time     `json:"lastSeen,omitzero"`
}

// Summary returns s's listing line.
func (s *Snapshot) Summary() Summary {
	return Summary{ID: s.ID, Time: s.Time, Tenant: s.Tenant, Tool: s.Tool, Consumer: s.Consumer,
		Method: s.Request.Method, Target: s.Request.Target, Status: s.Response.Status, Reason: s.Reason,
		Duration: s.Duration, RequestID: s.RequestID, Count: max(s.Count, 1), LastSeen: s.LastSeen}
}

// Origins of a failure.
const (
	OriginUpstream = "upstream"
	OriginGateway  = "gateway"
)

// GroupKey identifies repeats of one failure: the same tenant, tool (and
// MCP operation), route, method, status, reason and origin. A failing upstream
// under load fails every request the same way; each such failure within
// GroupWindow of the last one counts into one snapshot rather than
// storing another.
type GroupKey struct {
	Source, Tenant, Tool, Operation, Route, Method, Reason, Origin string
	Status                                                         int
}

// Key is c's GroupKey.
func (c *Capture) Key() GroupKey {
	return GroupKey{Source: c.Source, Tenant: c.Tenant, Tool: c.Tool, Operation: c.Operation, Route: c.Route,
		Method: c.Method, Reason: c.Reason, Origin: c.Origin, Status: c.Status}
}

// hopHeaders are not worth keeping (or replaying).
var hopHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true, "trailer": true,
	"transfer-encoding": true, "upgrade": true,
}

// build redacts c into a Snapshot (ID unset). maxBody bounds each kept
// body.
func build(c *Capture, r *Redactor, maxBody int) *Snapshot {
	var n notes
	s := &Snapshot{
		Time: c.Start.UTC(), Source: c.Source, Tenant: c.Tenant, Tool: c.Tool, Operation: c.Operation,
		Consumer: c.Consumer, Revision: c.Revision, RequestID: c.RequestID, Upstream: r.Scrub(c.Upstream),
		Reason: c.Reason, Error: r.text(c.Err, &n, "error"), Duration: c.Duration, UpstreamStatus: c.UpstreamStatus,
		Origin: c.Origin, Route: c.Route, Count: 1, LastSeen: c.Start.UTC(),
	}
	s.Request = Message{Method: c.Method, BodyBytes: c.ReqBodyLen, Injected: c.Injected}
	s.Request.URL, s.Request.Target = r.redactURL(c.URL, c.Upstream, &n)
	if c.Target != "" {
		s.Request.Target = r.redactTarget(c.Target, &n)
	}
	s.Request.Headers = r.redactHeaders(c.ReqHeaders, &n)
	s.Request.Body, s.Request.Truncated, s.Request.Omitted = r.keepBody(c.ReqBody, c.ReqBodyLen, c.ReqContentType, maxBody, &n)
	s.Response = Message{Status: c.Status, BodyBytes: c.RespBodyLen}
	s.Response.Headers = r.redactHeaders(c.RespHeaders, &n)
	s.Response.Body, s.Response.Truncated, s.Response.Omitted = r.keepBody(c.RespBody, c.RespBodyLen, c.RespContentType, maxBody, &n)
	s.Redactions = n.list
	return s
}

func (r *Redactor) redactHeaders(hs []Header, n *notes) []Header {
	out := make([]Header, 0, len(hs))
	for _, h := range hs {
		if hopHeaders[strings.ToLower(h.Name)] {
			continue
		}
		v, red := r.header(h.Name, h.Value, n)
		out = append(out, Header{Name: h.Name, Value: v, Redacted: red})
	}
	return out
}

// url redacts the absolute URL and derives the target below base.
func (r *Redactor) redactURL(raw, base string, n *notes) (string, string) {
	u, err := url.Parse(raw)
	if err != nil {
		s := r.text(raw, n, "url")
		return s, s
	}
	u.User = nil
	u.RawQuery = r.query(u.RawQuery, n)
	path := u.EscapedPath()
	if b, err := url.Parse(base); err == nil {
		if bp := strings.TrimSuffix(b.EscapedPath(), "/"); bp != "" && strings.HasPrefix(path, bp) {
			path = path[len(bp):]
		}
	}
	if path == "" {
		path = "/"
	}
	target := path
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	return r.text(u.String(), n, "url"), r.text(target, n, "url")
}

// redactTarget redacts a path and query given as such.
func (r *Redactor) redactTarget(target string, n *notes) string {
	path, query, ok := strings.Cut(target, "?")
	if ok {
		if q := r.query(query, n); q != "" {
			path += "?" + q
		}
	}
	return r.text(path, n, "url")
}

// keepBody redacts b (which may hold a little more than maxBody, so that
// secrets straddling the cut are still recognised) and cuts it.
func (r *Redactor) keepBody(b []byte, full int, contentType string, maxBody int, n *notes) (string, bool, string) {
	if full < len(b) {
		full = len(b)
	}
	out, omitted := r.body(b, contentType, n)
	if omitted != "" {
		return "", false, omitted
	}
	truncated := full > len(b)
	if len(out) > maxBody {
		cut := maxBody
		for cut > 0 && !utf8RuneStart(out[cut]) {
			cut--
		}
		// Never leave half a redaction marker, which would look like data.
		if i := strings.LastIndexByte(out[:cut], '['); i >= 0 && i+len(Redacted) > cut && strings.HasPrefix(Redacted, out[i:cut]) {
			cut = i
		}
		out, truncated = out[:cut], true
	}
	return out, truncated, ""
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
