package clitest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

func tool(ns, name string) *spec.Object {
	return &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool, Metadata: spec.Metadata{Namespace: ns, Name: name},
		Spec: &spec.ToolSpec{Upstream: "http://127.0.0.1:9001/" + name}}
}

// TestCallsAreRecorded: every call is recorded as text a test can compare,
// failed ones too, and a failing call fails before it changes anything.
func TestCallsAreRecorded(t *testing.T) {
	fa := New()
	ctx := context.Background()
	fa.Fail("XDPBlock", errors.New("boom"))
	if _, err := fa.XDPBlock(ctx, &api.XDPBlockRequest{CIDR: "198.51.100.9", For: "10m"}); err == nil || err.Error() != "boom" {
		t.Fatalf("XDPBlock: %v, want the error asked for", err)
	}
	if len(fa.Blocks.Items) != 1 {
		t.Fatalf("a failed call changed the blocks: %+v", fa.Blocks.Items)
	}
	fa.ApplyEncoded(ctx, &api.ApplyRequest{DryRun: true}, json.RawMessage(`[{},{}]`))
	fa.Objects(ctx, "tool", "acme", "")
	fa.Events(ctx, client.EventsOptions{Last: 2, Connected: func() error { return nil }}, func(api.Event) error { return nil })
	want := []string{
		"XDPBlock({CIDR:198.51.100.9 For:10m Reason:})",
		"ApplyEncoded({Objects:[] DryRun:true Prune:false Scope:{All:false Namespaces:[] ClusterScoped:false Selector:map[]} Message: WithObjects:false Force:false}, [2 objects])",
		`Objects("tool", "acme", "")`,
		"Events({Since:0 Last:2 Follow:false})",
	}
	if got := fa.CallStrings(); !slices.Equal(got, want) {
		t.Errorf("calls:\n%q\nwant:\n%q", got, want)
	}
}

// TestObjectsFilterAndCopy: Objects filters as stoad does, answers a
// missing name with not_found, masks secrets, and hands out copies.
func TestObjectsFilterAndCopy(t *testing.T) {
	fa := New()
	ctx := context.Background()
	fa.LiveObjects = []*spec.Object{tool("acme", "a"), tool("acme", "b"), tool("globex", "a")}
	fa.LiveObjects[0].Metadata.Annotations = map[string]string{"api-token": "s3cret"}
	for _, tc := range []struct {
		ns, name string
		want     int
	}{{"", "", 3}, {"acme", "", 2}, {"", "a", 2}, {"globex", "a", 1}} {
		l, err := fa.Objects(ctx, "Tool", tc.ns, tc.name)
		if err != nil || len(l.Items) != tc.want || l.Revision != 3 {
			t.Errorf("Objects(%q, %q): %v, %d items", tc.ns, tc.name, err, len(l.Items))
		}
	}
	var ae *api.Error
	if _, err := fa.Objects(ctx, "Tool", "acme", "nope"); !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
		t.Errorf("a missing name: %v, want not_found", err)
	}
	if _, err := fa.Objects(ctx, "Tol", "", ""); !errors.As(err, &ae) || ae.Code != api.CodeBadRequest {
		t.Errorf("an unknown kind: %v, want bad_request", err)
	}
	l, _ := fa.Objects(ctx, "Tool", "acme", "a")
	if v := l.Items[0].Metadata.Annotations["api-token"]; v != spec.Masked {
		t.Errorf("annotation answered as %q, want it masked", v)
	}
	l.Items[0].Spec.(*spec.ToolSpec).Upstream = "changed"
	if fa.LiveObjects[0].Spec.(*spec.ToolSpec).Upstream == "changed" || fa.LiveObjects[0].Metadata.Annotations["api-token"] != "s3cret" {
		t.Error("changing an answer changed the fake's state")
	}
	d, _ := fa.Digests(ctx)
	if len(d.Items) != 3 || d.Items[0].Ref != fa.LiveObjects[0].Ref() {
		t.Errorf("digests: %+v", d)
	}
}

// TestEventsFollow: the backlog (last N or after a sequence number), then
// with Follow what Commit announces, until the context ends.
func TestEventsFollow(t *testing.T) {
	fa := New()
	var seqs []int64
	collect := func(e api.Event) error { seqs = append(seqs, e.Seq); return nil }
	fa.Events(context.Background(), client.EventsOptions{Last: 2}, collect)
	fa.Events(context.Background(), client.EventsOptions{Since: 2, Follow: true}, collect) // no stream: ends after the backlog
	if !slices.Equal(seqs, []int64{2, 3, 3}) {
		t.Fatalf("backlogs: %v", seqs)
	}

	fa.EventStream = make(chan api.Event)
	ctx, cancel := context.WithCancel(context.Background())
	connected := make(chan struct{})
	got := make(chan api.Event)
	done := make(chan error)
	go func() {
		done <- fa.Events(ctx, client.EventsOptions{Since: 3, Follow: true, Connected: func() error { close(connected); return nil }},
			func(e api.Event) error { got <- e; return nil })
	}()
	<-connected
	go fa.Commit([]*spec.Object{tool("acme", "a")})
	if e := <-got; e.Seq != 4 || e.Type != "config.applied" || e.Data["revision"] != float64(4) {
		t.Fatalf("followed event: %+v", e)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled follow returned %v", err)
	}
	if s, _ := fa.Status(context.Background()); s.Revision != 4 || s.Objects["Tool"] != 1 {
		t.Errorf("status after the commit: revision %d, objects %v", s.Revision, s.Objects)
	}
}
