package snapshot

import (
	"fmt"
	"strings"
)

// skipInCurl are headers curl sets itself.
var skipInCurl = map[string]bool{"host": true, "content-length": true}

// Curl renders a ready-to-run curl command reproducing the request as it
// was sent upstream or, for an error the gateway made itself (no upstream
// was tried), as the client sent it to the gateway: without the headers
// the gateway set, and with a note that the client's credential is not
// stored. Values that were redacted appear as [REDACTED] and are listed in
// a comment above the command, so nothing secret is in it and it is
// obvious what to fill in.
func Curl(s *Snapshot) string {
	var b strings.Builder
	var redacted []string
	// An MCP call has no client HTTP request to repeat: its curl is the
	// upstream request the gateway would have sent.
	gateway := s.Origin == OriginGateway && s.Source == "proxy"
	skip := map[string]bool{}
	if gateway {
		for _, h := range s.Request.Injected {
			skip[strings.ToLower(h)] = true
		}
	}
	for _, h := range s.Request.Headers {
		if skip[strings.ToLower(h.Name)] {
			continue
		}
		if h.Redacted {
			redacted = append(redacted, "header "+h.Name)
		}
	}
	if strings.Contains(s.Request.URL, Redacted) || strings.Contains(s.Request.URL, redactedQuery) {
		redacted = append(redacted, "URL")
	}
	if strings.Contains(s.Request.Body, Redacted) {
		redacted = append(redacted, "body")
	}
	fmt.Fprintf(&b, "# %s: %s %s/%s, %s\n", s.ID, s.Source, s.Tenant, s.Tool, s.Time.Format("2006-01-02T15:04:05Z07:00"))
	if gateway {
		fmt.Fprintf(&b, "# the gateway answered itself (%s; no upstream was tried): this calls the gateway\n", s.Reason)
		fmt.Fprintf(&b, "# the client's credential is never stored: add it if the tool requires one\n")
	}
	if len(redacted) > 0 {
		fmt.Fprintf(&b, "# redacted (replace each [REDACTED] before running): %s\n", strings.Join(redacted, ", "))
	}
	switch {
	case s.Request.Omitted != "":
		fmt.Fprintf(&b, "# the request body (%d bytes) was not kept: %s\n", s.Request.BodyBytes, s.Request.Omitted)
	case s.Request.Truncated:
		fmt.Fprintf(&b, "# the request body was cut to %d of %d bytes\n", len(s.Request.Body), s.Request.BodyBytes)
	}
	if s.Request.URL == "" && s.Source == "mcp" {
		// A stdio MCP server: there is no HTTP request to repeat.
		fmt.Fprintf(&b, "# %s talks to its MCP server over stdio; the request it sent is:\n# %s\n", s.Upstream, s.Request.Body)
		return b.String()
	}
	method := s.Request.Method
	if method == "" {
		method = "GET"
	}
	fmt.Fprintf(&b, "curl -sS -X %s %s", shellQuote(method), shellQuote(s.Request.URL))
	for _, h := range s.Request.Headers {
		if l := strings.ToLower(h.Name); skipInCurl[l] || skip[l] {
			continue
		}
		fmt.Fprintf(&b, " \\\n  -H %s", shellQuote(h.Name+": "+h.Value))
	}
	if s.Request.Body != "" {
		fmt.Fprintf(&b, " \\\n  --data-binary %s", shellQuote(s.Request.Body))
	}
	b.WriteString("\n")
	return b.String()
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
