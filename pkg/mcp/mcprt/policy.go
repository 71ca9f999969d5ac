package mcprt

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/policy"
	"github.com/stoa-gateway/stoa/pkg/policy/policyrt"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// CEL policies (docs/policy.md) on MCP tools/call and tools/list: each
// revision's Tenant, ToolSet and Tool policies are compiled into one
// policy.Chain per Tool when the catalog is built; every tools/call of
// one of the Tool's MCP tools is decided by it (Authorize) before
// admission, quotas and the upstream, and tools/list hides the tools a
// caller's policy can never allow (grants.Allows, Chain.Visible with the
// caller known and the request unknown).

// policies are one revision's compiled chains, by Tool.
type policies struct {
	chains map[spec.Ref]*policy.Chain
}

// chain returns the chain of Tool ref, nil when no rule applies to it.
func (p *policies) chain(ref spec.Ref) *policy.Chain {
	if p == nil {
		return nil
	}
	return p.chains[ref]
}

// compilePolicies builds st's chains with the runtime's compiler.
func compilePolicies(c *policyrt.Compiler, st *state.Revision) (*policies, error) {
	chains, err := c.Chains(st.OfKind(spec.KindTenant), st.OfKind(spec.KindToolSet), st.OfKind(spec.KindTool))
	if err != nil {
		return nil, err
	}
	return &policies{chains: chains}, nil
}

// policyTarget is what a policy sees of the tool: operation.name is the
// operation's name, or a federated tool's name at its upstream (the name
// tools.allow/deny and rename use, stable across renames).
func policyTarget(t *mcp.Tool) *policy.Target {
	pt := &policy.Target{Tenant: t.Ref.Namespace, Tool: t.Ref.Name}
	switch {
	case t.Operation != nil:
		pt.Operation = t.Operation.Name
	case t.UpstreamName != "":
		pt.Operation = t.UpstreamName
	}
	return pt
}

// policyCaller is what a policy sees of the caller. Principals carry the
// identity (the tenant an admin selected is not the admin's own); the
// unix socket's owner, who presents no credential, is an admin with
// method "none".
func policyCaller(c mcp.Caller) *policy.Caller {
	p, _ := c.Principal.(*auth.Principal)
	if p == nil {
		return &policy.Caller{Tenant: c.Tenant, Subject: c.Subject, Method: "none", Admin: c.Via == "socket"}
	}
	pc := &policy.Caller{Tenant: p.Tenant, Consumer: p.Consumer, Subject: p.Subject, Issuer: p.Issuer,
		ClientID: p.ClientID, Method: p.Method.String(), Admin: p.Admin,
		Scopes: p.Scopes, Audiences: p.Audiences, Claims: p.Claims()}
	if pc.Consumer == "" {
		pc.Consumer = c.Consumer // a token's subject mapped to a Consumer
	}
	if gs, ok := pc.Claims["groups"].([]any); ok {
		for _, g := range gs {
			if s, ok := g.(string); ok {
				pc.Groups = append(pc.Groups, s)
			}
		}
	}
	return pc
}

// identityKey is what the tools/list view of a caller depends on besides
// the grants key when policies apply: every caller.* value a rule may read.
func identityKey(p *auth.Principal) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%t\x00", p.Subject, p.ClientID, p.Consumer, p.Admin)
	if cl := p.Claims(); len(cl) > 0 {
		b, _ := json.Marshal(cl) // map keys sorted: a stable encoding
		h.Write(b)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

var (
	_ mcp.Authorizer    = (*backend)(nil)
	_ mcp.AuthorizerFor = (*backend)(nil)
)

// Authorizes implements mcp.AuthorizerFor: only a tool with a policy chain
// can be refused by Authorize.
func (b *backend) Authorizes(t *mcp.Tool) bool {
	h, _ := t.Handle.(*handle)
	return h != nil && h.chain != nil
}

// Authorize implements mcp.Authorizer: the tool's policy chain decides
// the call. A denial is an isError result naming the rule (never its
// expression), counted in the tool's statistics as a 403, and recorded
// as a policy.denied event, which the audit trail keeps.
func (b *backend) Authorize(ctx context.Context, c mcp.Caller, t *mcp.Tool, call *mcp.CallInfo) error {
	h, _ := t.Handle.(*handle)
	if h == nil || h.chain == nil {
		return nil
	}
	start := time.Now()
	in := policy.Input{Caller: policyCaller(c), Target: h.target}
	if req := call.Upstream; req != nil {
		in.Method, in.Path = req.Method, string(req.Path)
	}
	in.Host = call.Host
	if call.Headers != nil {
		in.Headers = call.Headers
	}
	args := call.Arguments
	if c.Remote.IsValid() {
		in.SourceIP = c.Remote.Unmap().String()
	}
	if len(args) > 0 && string(args) != "null" {
		// The arguments passed the input schema; one that does not decode
		// into an object leaves mcp.arguments empty, and a rule reading it
		// then fails, which denies.
		var m map[string]any
		if json.Unmarshal(args, &m) == nil {
			in.Arguments = m
		}
	}
	psp := c.Span.StartChild("policy", tracing.KindInternal)
	d := h.chain.Decide(&in)
	if psp.Recording() {
		psp.SetString("stoa.policy.outcome", d.Outcome.String())
		if d.Rule != nil {
			psp.SetString("stoa.policy.rule", d.Rule.String())
		}
		if !d.Allowed() {
			psp.SetError("policy_denied", d.Reason())
		}
	}
	psp.End()
	if d.Allowed() {
		return nil
	}
	if h.series != nil {
		h.series.Observe(403, time.Since(start))
		h.series.Errors.Add(1)
	}
	if b.fedMetrics != nil && h.fed != nil {
		b.fedMetrics.observe(h.tenant, h.tool, "refused", time.Since(start))
	}
	b.denials.record(b, c, h.tenant, h.tool, "tools/call "+t.Name, t.Name, h.target.Operation, d)
	return policyRefusal(d)
}

func policyRefusal(d policy.Decision) error {
	return fmt.Errorf("not sent: the gateway refused the call (HTTP 403 policy_denied): %s", d.Reason())
}

// authorizeRead decides resources/read of a federated Tool's upstream
// resource with the Tool's chain: reading is using the Tool. The input has
// the caller, the Tool, no operation, no arguments and no request headers
// (a rule that needs them fails, and denies).
func (b *backend) authorizeRead(c mcp.Caller, ref spec.Ref, uri string) error {
	ch := b.pols.Load().chain(ref)
	if ch == nil {
		return nil
	}
	in := policy.Input{Caller: policyCaller(c), Target: &policy.Target{Tenant: ref.Namespace, Tool: ref.Name}}
	if c.Remote.IsValid() {
		in.SourceIP = c.Remote.Unmap().String()
	}
	d := ch.Decide(&in)
	if d.Allowed() {
		return nil
	}
	b.denials.record(b, c, ref.Namespace, ref.Name, "resources/read "+uri, "", "", d)
	return policyRefusal(d)
}

// denialLog emits policy.denied events, at most maxDenialEvents a second:
// a client hammering a denied tool must not flood the event log and the
// audit trail. What is dropped is counted into the next event
// ("suppressed") and the log.
type denialLog struct {
	mu         sync.Mutex
	second     int64
	n          int
	suppressed int
}

const maxDenialEvents = 50

func (l *denialLog) record(b *backend, c mcp.Caller, tenant, tool, what, mcpTool, operation string, d policy.Decision) {
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

	data := map[string]any{
		"target":   "Tool/" + tenant + "/" + tool,
		"tool":     tool,
		"via":      "mcp",
		"outcome":  d.Outcome.String(),
		"decision": d.String(),
	}
	if mcpTool != "" {
		data["mcpTool"] = mcpTool
	}
	if operation != "" {
		data["operation"] = operation
	}
	if d.Rule != nil {
		data["rule"] = d.Rule.Label()
		data["policy"] = d.Rule.Owner.String()
	}
	if c.Consumer != "" {
		data["consumer"] = c.Consumer
	}
	if c.Subject != "" {
		data["subject"] = c.Subject
	}
	if suppressed > 0 {
		data["suppressed"] = suppressed
	}
	b.o.Log.Info("mcp call denied by policy", "tenant", tenant, "tool", tool, "request", what, "reason", d.Reason(), "suppressed", suppressed)
	if b.o.Events != nil {
		b.o.Events("policy.denied", tenant, what+" "+d.Reason(), data)
	}
}
