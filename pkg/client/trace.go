package client

import "os"

// traceContext is the W3C trace context the caller handed stoa in the
// environment (TRACEPARENT, TRACESTATE: OpenTelemetry's environment
// carriers, as a CI job or a traced script sets them), sent with every
// request so that stoad's span of an apply or rollback joins the
// caller's trace. stoad checks the values strictly and decides whether
// to continue them (spec.tracing.accept); the client only keeps values
// that could not break the request: printable ASCII, bounded.
func traceContext() (traceparent, tracestate string) {
	traceparent = os.Getenv("TRACEPARENT")
	if !headerSafe(traceparent, 256) {
		return "", ""
	}
	tracestate = os.Getenv("TRACESTATE")
	if !headerSafe(tracestate, 8192) {
		tracestate = ""
	}
	return traceparent, tracestate
}

func headerSafe(v string, max int) bool {
	if v == "" || len(v) > max {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}
