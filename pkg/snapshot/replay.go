package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Route is where a replay goes: the tool's current upstream and
// credential, resolved by the daemon from the live revision.
type Route struct {
	Tenant string
	// URL is the absolute URL to send: the tool's current upstream with the
	// snapshot's Target mapped onto it exactly as the proxy maps a request
	// (Runtime.Replay uses proxy.UpstreamURL).
	URL string
	// Header and Value are the tool's upstream credential (the real
	// secret, set after the stored headers; never part of the result).
	Header, Value string
	Timeout       time.Duration
}

// ReplayResult compares the replay with the original.
type ReplayResult struct {
	Snapshot    string        `json:"snapshot"`
	URL         string        `json:"url"`
	OldStatus   int           `json:"oldStatus"`
	OldReason   string        `json:"oldReason"`
	Status      int           `json:"status"`
	Error       string        `json:"error,omitempty"`
	Duration    time.Duration `json:"durationNs"`
	OldDuration time.Duration `json:"oldDurationNs"`
	Body        string        `json:"body,omitempty"` // redacted excerpt of the new answer
	Warnings    []string      `json:"warnings,omitempty"`
}

// ReplayHeader marks replayed requests for the upstream.
const ReplayHeader = "X-Stoa-Replay"

// Replay re-sends s's request to rt's upstream and reports the new status
// beside the old. Redacted headers are left out (the route's own
// credential is added), and a body that was cut, redacted or not kept is
// sent as stored, with a warning.
func Replay(ctx context.Context, s *Snapshot, rt Route, red *Redactor, client *http.Client) (ReplayResult, error) {
	res := ReplayResult{Snapshot: s.ID, OldStatus: s.Response.Status, OldReason: s.Reason, OldDuration: s.Duration}
	res.URL = rt.URL
	if strings.Contains(res.URL, Redacted) || strings.Contains(res.URL, redactedQuery) {
		res.Warnings = append(res.Warnings, "the URL holds redacted values; they are sent as [REDACTED]")
	}
	var body io.Reader
	switch {
	case s.Request.Omitted != "":
		res.Warnings = append(res.Warnings, fmt.Sprintf("the request body (%d bytes) was not kept; sending none", s.Request.BodyBytes))
	case s.Request.Truncated:
		res.Warnings = append(res.Warnings, fmt.Sprintf("the request body was kept only in part (%d of %d bytes); sending that part", len(s.Request.Body), s.Request.BodyBytes))
		body = strings.NewReader(s.Request.Body)
	case s.Request.Body != "":
		body = strings.NewReader(s.Request.Body)
	}
	if strings.Contains(s.Request.Body, Redacted) {
		res.Warnings = append(res.Warnings, "the request body holds redacted values; they are sent as [REDACTED]")
	}
	if rt.Timeout <= 0 {
		rt.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, rt.Timeout)
	defer cancel()
	method := s.Request.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, res.URL, body)
	if err != nil {
		return res, fmt.Errorf("build replay request: %w", err)
	}
	var dropped []string
	for _, h := range s.Request.Headers {
		switch l := strings.ToLower(h.Name); {
		case l == "host" || l == "content-length":
			continue
		case h.Redacted:
			dropped = append(dropped, h.Name)
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	if len(dropped) > 0 {
		res.Warnings = append(res.Warnings, "redacted headers left out: "+strings.Join(dropped, ", "))
	}
	if rt.Header != "" && rt.Value != "" {
		req.Header.Set(rt.Header, rt.Value)
	}
	req.Header.Set(ReplayHeader, s.ID)
	start := time.Now()
	resp, err := client.Do(req)
	res.Duration = time.Since(start)
	if err != nil {
		res.Error = red.Scrub(err.Error())
		return res, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	res.Status = resp.StatusCode
	var n notes
	res.Body, _ = red.body(bytes.TrimSpace(b), resp.Header.Get("Content-Type"), &n)
	return res, nil
}
