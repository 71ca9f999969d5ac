package proxy

import (
	"iter"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/policy/policyrt"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
)

// CEL policies (docs/policy.md) on proxied requests. Each revision's
// Tenant, ToolSet and Tool policies are compiled into one policy.Chain per
// route in Prepare (programs of unchanged policies are kept across
// reloads); a request to a route with a chain is decided after
// authentication and before subscriptions, quotas and rate limits, on both
// the fast path and fasthttp's. A denial is a 403 naming the rule and a
// policy.denied event, which the audit trail keeps. A route without
// policies pays one nil check.

// errPolicyDenied is the error code of a request a policy refused.
const errPolicyDenied = "policy_denied"

// routePolicy is what deciding a route's requests needs.
type routePolicy struct {
	chain  *policy.Chain
	target *policy.Target
	// reads are the variable groups its rules read: a request's host and
	// source address are formatted only for rules that read them.
	reads policy.Group
}

// policyChains compiles st's policies: each Tool's chain, if any applies.
// A policy that does not compile fails the reload (policyrt.Compiler).
func policyChains(c *policyrt.Compiler, st *state.Revision) (map[spec.Ref]*policy.Chain, error) {
	return c.Chains(st.OfKind(spec.KindTenant), st.OfKind(spec.KindToolSet), st.OfKind(spec.KindTool))
}

// attachPolicies gives every route of t its chain. Routes compile shared
// with the live table have none and get none (compile copies a route
// whose policy changes): they are not written to.
func attachPolicies(chains map[spec.Ref]*policy.Chain, t *table) {
	for _, r := range t.routes {
		var ch *policy.Chain
		if len(chains) > 0 {
			ch = chains[spec.Ref{Kind: spec.KindTool, Namespace: r.Tenant, Name: r.Tool}]
		}
		switch {
		case ch == nil:
			if r.policy != nil {
				r.policy = nil
			}
		case r.policy == nil || r.policy.chain != ch:
			r.policy = &routePolicy{chain: ch, target: &policy.Target{Tenant: r.Tenant, Tool: r.Tool}, reads: ch.Reads()}
		}
	}
}

// policyCallers holds the policy.Caller of each principal seen, built once:
// principals are shared by every request presenting the same key or token,
// and a Caller converts its values for CEL once, on first use. Bounded:
// cleared when it holds maxPolicyCallers (principals of expired tokens are
// dropped that way) and on every reload.
type policyCallers struct {
	m sync.Map // *auth.Principal → *policy.Caller
	n atomic.Int64
}

const maxPolicyCallers = 1 << 16

func (c *policyCallers) get(p *auth.Principal) *policy.Caller {
	if p == nil {
		return nil // anonymous
	}
	if v, ok := c.m.Load(p); ok {
		return v.(*policy.Caller)
	}
	if c.n.Add(1) > maxPolicyCallers {
		c.reset()
		c.n.Add(1)
	}
	v, _ := c.m.LoadOrStore(p, newPolicyCaller(p))
	return v.(*policy.Caller)
}

func (c *policyCallers) reset() {
	c.m.Clear()
	c.n.Store(0)
}

// newPolicyCaller is what a policy sees of an authenticated caller.
func newPolicyCaller(p *auth.Principal) *policy.Caller {
	pc := &policy.Caller{Tenant: p.Tenant, Consumer: p.Consumer, Subject: p.Subject, Issuer: p.Issuer,
		ClientID: p.ClientID, Method: p.Method.String(), Admin: p.Admin,
		Scopes: p.Scopes, Audiences: p.Audiences, Claims: p.Claims()}
	if gs, ok := pc.Claims["groups"].([]any); ok {
		for _, g := range gs {
			if s, ok := g.(string); ok {
				pc.Groups = append(pc.Groups, s)
			}
		}
	}
	return pc
}

// policyRequest is the per-request part of a policy's input, as byte
// slices valid during the decision; decide converts them without copying.
type policyRequest struct {
	method, path, host []byte
	headers            policy.Headers
	source             netip.Addr
}

// policyScratch is a decision's Input and the buffers its strings point
// into. Decide keeps its Input beyond the stack frame (cel-go's activation
// may hold it), so it comes from a pool rather than the stack: no
// allocation per request.
type policyScratch struct {
	in   policy.Input
	host [256]byte
	ip   [64]byte
}

var policyScratchPool = sync.Pool{New: func() any { return new(policyScratch) }}

// decide evaluates r's chain for one request. The strings of the Input
// alias the request's buffers (and the scratch's): the policy reads them
// during Decide only.
func (p *Proxy) decide(r *Route, principal *auth.Principal, req *policyRequest) policy.Decision {
	s := policyScratchPool.Get().(*policyScratch)
	s.in = policy.Input{
		Caller:  p.callers.get(principal),
		Target:  r.policy.target,
		Method:  bytesString(req.method),
		Path:    bytesString(req.path),
		Headers: req.headers,
	}
	if r.policy.reads&policy.GroupRequest != 0 {
		host := req.host
		if len(host) <= len(s.host) {
			host = lowerInto(s.host[:0], host)
		} else {
			host = []byte(strings.ToLower(string(host)))
		}
		s.in.Host = bytesString(host)
	}
	if r.policy.reads&policy.GroupSource != 0 && req.source.IsValid() {
		s.in.SourceIP = bytesString(req.source.AppendTo(s.ip[:0]))
	}
	d := r.policy.chain.Decide(&s.in)
	s.in = policy.Input{} // keep no request alive in the pool
	policyScratchPool.Put(s)
	return d
}

// deny answers a request the policy refused: 403 with the gateway's JSON
// error body naming the rule (never its expression), and a policy.denied
// event. It returns the status sent.
func (p *Proxy) deny(ctx *fasthttp.RequestCtx, r *Route, principal *auth.Principal, req *policyRequest, d *policy.Decision, reqID []byte) int {
	writePolicyDenied(ctx, d.Reason(), ruleName(d.Rule), reqID)
	p.denials.record(p, r, principal, req, d, reqID)
	return fasthttp.StatusForbidden
}

// ruleName is how the 403 body and the event name the rule that decided:
// its name, or "rules[i]" for an unnamed one; "" when no single rule did
// (no allow rule matched).
func ruleName(r *policy.Rule) string {
	switch {
	case r == nil:
		return ""
	case r.Name != "":
		return r.Name
	}
	return "rules[" + strconv.Itoa(r.Index) + "]"
}

// writePolicyDenied writes {"error":"policy_denied","message":reason,
// "rule":rule,"requestId":...}.
func writePolicyDenied(ctx *fasthttp.RequestCtx, reason, rule string, reqID []byte) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(fasthttp.StatusForbidden)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	resp := &ctx.Response
	resp.AppendBodyString(`{"error":"` + errPolicyDenied + `","message":`)
	appendJSONString(resp, reason)
	if rule != "" {
		resp.AppendBodyString(`,"rule":`)
		appendJSONString(resp, rule)
	}
	resp.AppendBodyString(`,"requestId":"`)
	resp.AppendBody(reqID)
	resp.AppendBodyString("\"}\n")
}

// denialLog emits policy.denied events, at most maxDenialEvents a second:
// a client hammering a denied route must not flood the event log and the
// audit trail. What is dropped is counted into the next event
// ("suppressed").
type denialLog struct {
	mu         sync.Mutex
	second     int64
	n          int
	suppressed int
}

const maxDenialEvents = 50

func (l *denialLog) record(p *Proxy, r *Route, principal *auth.Principal, req *policyRequest, d *policy.Decision, reqID []byte) {
	if p.opts.OnEvent == nil {
		return
	}
	now := time.Now().Unix()
	l.mu.Lock()
	if now != l.second {
		l.second, l.n = now, 0
	}
	if l.n >= maxDenialEvents {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.n++
	suppressed := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()

	// No credential, header value or query string: the method, the path
	// (without its query) and who asked. The fields are those of MCP's
	// denials (pkg/mcp), so one audit query finds both.
	method, path := string(req.method), string(req.path)
	data := map[string]any{
		"target":    "Tool/" + r.Tenant + "/" + r.Tool,
		"tool":      r.Tool,
		"via":       "http",
		"method":    method,
		"path":      path,
		"outcome":   d.Outcome.String(),
		"decision":  decisionRecord(d),
		"requestId": string(reqID),
	}
	if d.Rule != nil {
		data["rule"] = d.Rule.Label()
		data["policy"] = d.Rule.Owner.String()
	}
	if req.source.IsValid() {
		data["source"] = req.source.String()
	}
	// The audit trail's actor is "subject": the token's, else the API
	// key's id.
	switch {
	case principal == nil:
		data["actor"] = "anonymous"
	case principal.Subject != "":
		data["subject"] = principal.Subject
	case principal.KeyID != "":
		data["subject"] = "key " + principal.KeyID
	}
	if principal != nil && principal.Consumer != "" {
		data["consumer"] = principal.Consumer
	}
	if suppressed > 0 {
		data["suppressed"] = suppressed
	}
	p.opts.OnEvent("policy.denied", r.Tenant, method+" "+path+" "+d.Reason(), data)
}

// decisionRecord is Decision.String for the event log and the audit
// trail without request data: an evaluation error is kept only in the
// forms that name nothing but the rule's own keys and types (a missing
// key, a type mismatch, the cost limit); others, such as a conversion
// error quoting the value it could not convert (a header's, say), are
// recorded as "evaluation failed".
func decisionRecord(d *policy.Decision) string {
	if d.Outcome != policy.OutcomeError || d.Rule == nil || d.Err == nil {
		return d.String()
	}
	msg := "evaluation failed"
	for _, safe := range []string{"no such key", "no such attribute", "no such overload", "no matching overload",
		"operation cancelled: actual cost limit exceeded", "index out of range"} {
		if strings.HasPrefix(d.Err.Error(), safe) && !strings.ContainsAny(d.Err.Error(), `"'`) {
			msg = d.Err.Error()
			break
		}
	}
	return d.Reason() + ": " + d.Rule.Expr + ": " + msg
}

// bytesString is b as a string without a copy, for values read while b
// is unchanged (a policy decision).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// lowerInto appends b lower-cased (ASCII) to dst.
func lowerInto(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// Both proxy paths give a policy the request's headers the same way
// (policy.Headers): lower-case names, repeated fields joined with ", ",
// values aliasing the request's buffer. They differ only in how the
// fields are walked; fieldHeader and fieldNames hold the rest.

// fasthttpHeaders are the headers of a request on fasthttp's path.
type fasthttpHeaders fasthttp.RequestHeader

func (h *fasthttpHeaders) Header(name string) (string, bool) {
	return fieldHeader((*fasthttp.RequestHeader)(h).All(), name)
}

func (h *fasthttpHeaders) Len() int { return fieldCount((*fasthttp.RequestHeader)(h).All()) }

func (h *fasthttpHeaders) Range(fn func(name, value string) bool) {
	fieldNames((*fasthttp.RequestHeader)(h).All(), func(name string) bool {
		v, _ := h.Header(name)
		return fn(name, v)
	})
}

// fastHeaders gives a policy the headers of a request on the fast path,
// read from its header block.
type fastHeaders fastHead

func (h *fastHeaders) field(i int) (name, value []byte) {
	f := &h.fields[i]
	name = h.block[f.start:f.nameEnd]
	value = h.block[f.nameEnd+1 : f.end]
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	return name, value
}

func (h *fastHeaders) all(yield func(name, value []byte) bool) {
	for i := 0; i < h.nf; i++ {
		if !yield(h.field(i)) {
			return
		}
	}
}

func (h *fastHeaders) Header(name string) (string, bool) { return fieldHeader(h.all, name) }

func (h *fastHeaders) Len() int { return fieldCount(h.all) }

func (h *fastHeaders) Range(fn func(name, value string) bool) {
	fieldNames(h.all, func(name string) bool {
		v, _ := h.Header(name)
		return fn(name, v)
	})
}

// fieldHeader is the value of header name (lower case) among fields:
// repeated fields joined with ", ".
func fieldHeader(fields iter.Seq2[[]byte, []byte], name string) (string, bool) {
	var (
		first  []byte
		joined []byte
		n      int
	)
	for k, v := range fields {
		if !equalFoldLower(k, name) {
			continue
		}
		switch n++; n {
		case 1:
			first = v
		case 2:
			joined = append(append(append(joined, first...), ", "...), v...)
		default:
			joined = append(append(joined, ", "...), v...)
		}
	}
	switch n {
	case 0:
		return "", false
	case 1:
		return bytesString(first), true
	}
	return string(joined), true
}

// fieldCount is the number of distinct field names.
func fieldCount(fields iter.Seq2[[]byte, []byte]) int {
	n := 0
	fieldNames(fields, func(string) bool { n++; return true })
	return n
}

// fieldNames calls fn with each distinct lower-case field name, in order.
func fieldNames(fields iter.Seq2[[]byte, []byte], fn func(string) bool) {
	var seen []string
	for k := range fields {
		name := strings.ToLower(string(k))
		dup := false
		for _, s := range seen {
			if s == name {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		seen = append(seen, name)
		if !fn(name) {
			return
		}
	}
}
