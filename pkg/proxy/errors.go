package proxy

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/valyala/fasthttp"
)

// Gateway error codes in JSON bodies.
const (
	errNoRoute     = "no_route"
	errBadUpstream = "bad_gateway"
	errNoUpstream  = "no_healthy_upstream"
	errTimeout     = "upstream_timeout"
	errRateLimited = "rate_limited"
	// errLimitsUnavailable: the fleet's shared rate-limit store cannot be
	// reached and the Gateway fails closed (limits.backend redis).
	errLimitsUnavailable = "limits_unavailable"
	errUnauthorized      = "unauthorized"
	errForbidden         = "forbidden"
	errBadRequest        = "bad_request"
	errURITooLong        = "uri_too_long"
	errHeaderTooLarge    = "header_too_large"
	errBodyTooLarge      = "body_too_large"
	errUnavailable       = "unavailable"
	errTimeoutClient     = "request_timeout"
	errTooLarge          = "response_too_large"
	errVersion           = "http_version_not_supported"
	errExpectation       = "expectation_failed"
)

// writeError answers with a JSON error body:
// {"error": "...", "message": "...", "requestId": "..."}. It appends into
// the response body without allocating.
func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string, reqID []byte) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	r := &ctx.Response
	r.AppendBodyString(`{"error":"`)
	r.AppendBodyString(code)
	r.AppendBodyString(`","message":`)
	appendJSONString(r, msg)
	if len(reqID) > 0 {
		r.AppendBodyString(`,"requestId":"`)
		r.AppendBody(reqID)
		r.AppendBodyString(`"`)
	}
	r.AppendBodyString("}\n")
}

// writeRateLimited answers 429 with the limiter's verdict in the body; the
// RateLimit-* and Retry-After headers are set by the caller.
func writeRateLimited(ctx *fasthttp.RequestCtx, retryAfterSec int64, scope string, reqID []byte) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(fasthttp.StatusTooManyRequests)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	var buf [32]byte
	r := &ctx.Response
	r.AppendBodyString(`{"error":"rate_limited","message":"rate limit exceeded (`)
	r.AppendBodyString(scope)
	r.AppendBodyString(`); retry later","retryAfterSeconds":`)
	r.AppendBody(strconv.AppendInt(buf[:0], retryAfterSec, 10))
	r.AppendBodyString(`,"limit":"`)
	r.AppendBodyString(scope)
	r.AppendBodyString(`","requestId":"`)
	r.AppendBody(reqID)
	r.AppendBodyString("\"}\n")
}

// appendJSONString writes s as a JSON string (messages are ours, but quote
// properly anyway).
func appendJSONString(r *fasthttp.Response, s string) {
	r.AppendBodyString(`"`)
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 {
			r.AppendBodyString(s[start:i])
			switch c {
			case '"':
				r.AppendBodyString(`\"`)
			case '\\':
				r.AppendBodyString(`\\`)
			default:
				r.AppendBodyString(`\u00`)
				r.AppendBody([]byte{hexDigits[c>>4], hexDigits[c&0xf]})
			}
			start = i + 1
		}
	}
	r.AppendBodyString(s[start:])
	r.AppendBodyString(`"`)
}

// failure classifies an upstream error.
type failure uint8

const (
	failNone failure = iota
	failConnect
	failReset
	failTimeout
	failOther
	// failProtocol is an answer with framing a proxy must not pass on.
	failProtocol
	// failTooLarge is an answer over limits.maxResponseBytes. The
	// upstream is not at fault as far as health goes.
	failTooLarge
)

var errNoHealthy = errors.New("no healthy upstream")

// ErrNoHealthyUpstream is Failure.Err when every upstream of the route was
// ejected or unhealthy: the gateway answered 503 itself.
var ErrNoHealthyUpstream = errNoHealthy

// String names the failure for snapshots and logs.
func (f failure) String() string {
	switch f {
	case failNone:
		return "5xx"
	case failConnect:
		return "connect"
	case failReset:
		return "reset"
	case failTimeout:
		return "timeout"
	case failProtocol:
		return "protocol"
	case failTooLarge:
		return "too-large"
	}
	return "other"
}

func classify(err error) failure {
	if err == nil {
		return failNone
	}
	switch err {
	case errBadResponse:
		return failProtocol
	case errResponseTooLarge:
		return failTooLarge
	}
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		if errors.Is(err, fasthttp.ErrDialTimeout) {
			return failConnect
		}
		return failTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failTimeout
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return failConnect
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fasthttp.ErrNoFreeConns) {
		return failConnect
	}
	if errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return failReset
	}
	return failOther
}
