package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing/otlptest"
)

// TestChangeSpans: an apply, a delete (previewed), a rollback and a
// refused apply through the LocalAPI are spans stoa.{action} continuing
// the caller's trace (the client sends TRACEPARENT/TRACESTATE from its
// environment), with a child per phase — plan, validate, prepare (one
// child per runtime), commit, swap — and what changed; the caller's kind
// is recorded, never who it is. An unsampled caller records nothing;
// without a traceparent the change is a new trace.
func TestChangeSpans(t *testing.T) {
	col := otlptest.NewServer(t)
	ld := startDaemon(t, nil)
	ld.apply(`apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  tracing:
    enabled: true
    endpoint: ` + col.Endpoint() + `
    sampleRatio: 1
    batchTimeout: 100ms
---
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {displayName: Acme}
`)
	const parent = "00f067aa0ba902b7"
	trace := func(n int) string { return fmt.Sprintf("%032x", 0xa0+n) }
	as := func(n int, flags string) {
		t.Setenv("TRACEPARENT", "00-"+trace(n)+"-"+parent+"-"+flags)
		t.Setenv("TRACESTATE", "ci=job-7")
	}
	ctx := context.Background()
	tool := `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: t, namespace: acme}
spec: {protocol: rest, upstream: "http://127.0.0.1:1", auth: {type: none}}
`
	as(1, "01")
	if r := ld.apply(tool); r.Revision != 2 {
		t.Fatalf("apply: revision %d", r.Revision)
	}
	as(2, "01")
	if _, err := ld.c.Delete(ctx, &api.DeleteRequest{Refs: []spec.Ref{{Kind: spec.KindTool, Namespace: "acme", Name: "t"}}, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	as(3, "01")
	if r, err := ld.c.Rollback(ctx, &api.RollbackRequest{Revision: 1}); err != nil || r.Revision != 3 {
		t.Fatalf("rollback: %v %+v", err, r)
	}
	as(4, "01")
	if _, err := ld.applyErr(strings.ReplaceAll(tool, "namespace: acme", "namespace: nobody"), false); err == nil {
		t.Fatal("an apply into a missing tenant was accepted")
	}
	as(5, "00") // not sampled by the caller: nothing recorded
	ld.apply(strings.ReplaceAll(tool, "name: t,", "name: u,"))
	t.Setenv("TRACEPARENT", "")
	ld.apply(strings.ReplaceAll(tool, "name: t,", "name: v,"))

	flushCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ld.d.tracer().ForceFlush(flushCtx); err != nil {
		t.Fatal(err)
	}
	all := col.WaitSpans(t, 1)
	of := func(n int) []otlptest.Span {
		var out []otlptest.Span
		for _, s := range all {
			if s.TraceID == trace(n) {
				out = append(out, s)
			}
		}
		return out
	}
	runtimes := len(ld.d.runtimes)
	// check finds the change span of trace n, under the caller's span,
	// with these phases in order and these attributes.
	check := func(n int, name string, phases []string, attrs map[string]any) otlptest.Span {
		t.Helper()
		spans := of(n)
		sp := otlptest.One(t, spans, name)
		if sp.ParentSpanID != parent || sp.Kind != "internal" || sp.TraceState != "ci=job-7" {
			t.Errorf("%s: parent %s kind %s tracestate %q, want internal under the caller's %s, its tracestate kept", name, sp.ParentSpanID, sp.Kind, sp.TraceState, parent)
		}
		var got []string
		for _, c := range otlptest.Children(spans, sp) {
			got = append(got, c.Name)
			if c.Name == "prepare" {
				if k := otlptest.Children(spans, c); len(k) != runtimes || !strings.HasPrefix(k[0].Name, "prepare ") || k[0].Attrs["stoa.runtime"] == nil {
					t.Errorf("%s: prepare has %d children, want one per runtime (%d):\n%s", name, len(k), runtimes, otlptest.Dump(spans))
				}
			}
		}
		if strings.Join(got, " ") != strings.Join(phases, " ") {
			t.Errorf("%s: phases %q, want %q:\n%s", name, got, phases, otlptest.Dump(spans))
		}
		for k, v := range attrs {
			if sp.Attrs[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", name, k, sp.Attrs[k], v)
			}
		}
		return sp
	}
	full := []string{"plan", "validate", "prepare", "commit", "swap"}
	check(1, "stoa.apply", full, map[string]any{"stoa.revision": int64(2), "stoa.revision.created": true, "stoa.changes": int64(1),
		"stoa.changes.create": int64(1), "stoa.changes.update": int64(0), "stoa.changes.delete": int64(0),
		"stoa.actor.kind": "socket", "stoa.dry_run": false, "stoa.action": "apply"})
	check(2, "stoa.delete", []string{"plan", "validate", "prepare"}, map[string]any{"stoa.revision": int64(2), "stoa.revision.created": false,
		"stoa.changes.delete": int64(1), "stoa.dry_run": true})
	check(3, "stoa.rollback", full, map[string]any{"stoa.revision": int64(3), "stoa.rollback.to": int64(1), "stoa.changes.delete": int64(1)})
	refused := check(4, "stoa.apply", []string{"plan", "validate"}, map[string]any{"error.type": api.CodeInvalid, "stoa.revision.created": nil})
	if refused.StatusCode != "error" {
		t.Errorf("refused apply: status %s", refused.StatusCode)
	}
	if v := otlptest.One(t, of(4), "validate"); v.StatusCode != "error" || v.Attrs["error.type"] != api.CodeInvalid {
		t.Errorf("the failed phase: %+v", v)
	}
	if s := of(5); len(s) != 0 {
		t.Errorf("an unsampled caller's change was recorded:\n%s", otlptest.Dump(s))
	}
	var roots int
	for _, s := range all {
		if s.Name == "stoa.apply" && s.ParentSpanID == "" {
			roots++
		}
	}
	if roots != 1 {
		t.Errorf("%d root stoa.apply spans, want the one without a traceparent:\n%s", roots, otlptest.Dump(all))
	}

	// Who asked is in the revision, not in the trace.
	revs, err := ld.d.Revisions(ctx, 1)
	if err != nil || len(revs) != 1 || revs[0].Actor == "" {
		t.Fatalf("revisions: %v %+v", err, revs)
	}
	for _, s := range all {
		for k, v := range s.Attrs {
			if str, ok := v.(string); ok && strings.Contains(str, revs[0].Actor) {
				t.Errorf("span %s records the actor %q in %s", s.Name, revs[0].Actor, k)
			}
		}
	}
}
