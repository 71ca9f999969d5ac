package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// traceMeta returns the params._meta members that carry the trace context
// of ctx's span (tracing.ContextWithSpan) to the upstream, as the MCP
// conventions for OpenTelemetry ask (W3C keys, unprefixed); nil without a
// span. The HTTP transport also sends the traceparent header.
func traceMeta(ctx context.Context) []byte {
	sp := tracing.SpanFromContext(ctx)
	if !sp.IsValid() {
		return nil
	}
	var tb [tracing.TraceparentLen]byte
	b := append([]byte(`"traceparent":"`), sp.AppendTraceparent(tb[:0])...)
	b = append(b, '"')
	if ts := sp.Tracestate(); len(ts) > 0 {
		// tracestate values may hold '"' and '\\': encoded as JSON.
		q, _ := json.Marshal(string(ts))
		b = append(append(b, `,"tracestate":`...), q...)
	}
	return b
}

// ErrUnknownResource: the URI is not one of this upstream's exposed
// resources.
var ErrUnknownResource = errors.New("unknown resource")

// Call runs tools/call of the exposed tool upstreamName with args (a JSON
// object, or empty for none) and returns the upstream's result verbatim.
// Errors: ErrUnknownTool (not exposed), ErrUnavailable (down: fails at
// once), ErrTimeout (no answer within the configured timeout; the session
// stays usable), ErrInputRequired, *RPCError (the upstream answered with a
// JSON-RPC error), or ctx's error. Error texts are safe to show the model.
func (u *Upstream) Call(ctx context.Context, upstreamName string, args json.RawMessage) (Result, error) {
	tool, ok := u.view.Load().byUpstream[upstreamName]
	if !ok {
		return Result{}, &callError{kind: ErrUnknownTool, public: "unknown tool " + strconv.Quote(upstreamName) + " of " + u.key, cause: ErrUnknownTool}
	}
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	r := request{method: "tools/call", name: upstreamName, trace: traceMeta(ctx)}
	r.inner = make([]byte, 0, len(tool.callPrefix)+len(args))
	r.inner = append(append(r.inner, tool.callPrefix...), args...)
	if len(tool.paramHeaders) > 0 {
		r.paramHeaders = paramHeaderValues(tool.paramHeaders, args)
	}
	raw, err := u.exchange(ctx, &r)
	if err != nil {
		return Result{}, err
	}
	var probe struct {
		IsError    bool   `json:"isError"`
		ResultType string `json:"resultType"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Result{}, &callError{kind: ErrUnavailable, public: "upstream " + u.key + " sent an invalid result", cause: err}
	}
	if probe.ResultType == "input_required" {
		return Result{}, &callError{kind: ErrInputRequired,
			public: "upstream " + u.key + " asked for client input (elicitation or sampling), which federated tools do not support",
			cause:  ErrInputRequired}
	}
	return Result{Raw: raw, IsError: probe.IsError}, nil
}

// ReadResource reads a namespaced resource URI (ResourcePrefix + upstream
// URI) and returns the ReadResourceResult with its contents' URIs
// namespaced. Only URIs the upstream listed, or that match an explicit
// Resources.Allow pattern (for templated URIs), are read.
func (u *Upstream) ReadResource(ctx context.Context, uri string) (json.RawMessage, error) {
	cfg := u.cfg.Load()
	prefix := ResourcePrefix(cfg.Tenant, cfg.Tool)
	up, ok := strings.CutPrefix(uri, prefix)
	if !ok || up == "" || !cfg.Resources.Expose || !cfg.Resources.Admits(up) ||
		!u.view.Load().resources_[up] && len(cfg.Resources.Allow) == 0 {
		return nil, &callError{kind: ErrUnknownResource, public: "unknown resource " + strconv.Quote(uri), cause: ErrUnknownResource}
	}
	r := request{method: "resources/read", name: up, inner: append([]byte(`"uri":`), strconv.Quote(up)...)}
	raw, err := u.exchange(ctx, &r)
	if err != nil {
		return nil, err
	}
	out, err := rewriteResourceURIs(raw, prefix)
	if err != nil {
		return nil, &callError{kind: ErrUnavailable, public: "upstream " + u.key + " sent an invalid resource", cause: err}
	}
	return out, nil
}

// exchange runs one request with the call timeout and turns failures into
// model-safe errors, updating the health state.
func (u *Upstream) exchange(ctx context.Context, r *request) (json.RawMessage, error) {
	if !u.ready.Load() {
		return nil, u.unavailable()
	}
	cfg := u.cfg.Load()
	gen := u.gen.Load()
	cctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	raw, err := u.t.call(cctx, r)
	cancel()
	if err == nil {
		u.consecFailures.Store(0)
		return raw, nil
	}
	var rpcErr *RPCError
	var se *statusError
	switch {
	case errors.As(err, &rpcErr):
		u.consecFailures.Store(0)
		return nil, rpcErr
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		u.noteFailure(gen, fmt.Errorf("%s timed out after %s", r.method, cfg.timeout()))
		return nil, &callError{kind: ErrTimeout, public: "upstream " + u.key + " did not answer within " + cfg.timeout().String(), cause: err}
	case errors.As(err, &se) && se.code != 401 && se.code != 403 && se.code < 500:
		u.consecFailures.Store(0)
		return nil, &callError{kind: ErrUnavailable, public: "upstream " + u.key + " refused the request: " + se.short(), cause: err}
	case errors.As(err, &se):
		u.noteFailure(gen, err)
		u.recordError(err)
		return nil, &callError{kind: ErrUnavailable, public: "upstream " + u.key + " failed: " + se.short(), cause: err}
	}
	// No answer: the connection or the process is gone.
	u.recordError(err)
	u.markDown(gen, err)
	return nil, &callError{kind: ErrUnavailable, public: "upstream " + u.key + " is unavailable (" + describe(err) + "); stoa is reconnecting", cause: err}
}

// noteFailure counts a failed call; FailureThreshold in a row open the
// circuit.
func (u *Upstream) noteFailure(gen uint64, err error) {
	u.recordError(err)
	if n := u.consecFailures.Add(1); int(n) >= u.opts.failureThreshold() {
		u.markDown(gen, fmt.Errorf("%d calls in a row failed, the last: %w", n, err))
	}
}

func (u *Upstream) recordError(err error) {
	u.mu.Lock()
	u.lastErr, u.lastCause, u.lastErrAt = err.Error(), err, time.Now()
	u.mu.Unlock()
}

func (u *Upstream) unavailable() error {
	u.mu.Lock()
	state, cause, since := u.state, u.lastCause, u.since
	u.mu.Unlock()
	switch state {
	case StateStopped:
		return &callError{kind: ErrUnavailable, public: "upstream " + u.key + " is stopped", cause: errors.New("stopped")}
	case StateStarting:
		return &callError{kind: ErrUnavailable, public: "upstream " + u.key + " is starting", cause: errors.New("starting")}
	}
	if cause == nil {
		cause = errors.New("reconnecting")
	}
	return &callError{kind: ErrUnavailable,
		public: "upstream " + u.key + " is unavailable since " + since.UTC().Format(time.RFC3339) + " (" + describe(cause) + "); stoa is reconnecting",
		cause:  cause}
}
