package spec

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"

	yaml "github.com/goccy/go-yaml"
)

func TestDefaultTool(t *testing.T) {
	objs := mustParse(t, toolDoc+`    - name: put_it
      method: PUT
      path: /x
      annotations: {idempotent: false}
    - {name: del, method: DELETE, path: /y}
    - {name: post, method: POST, path: /z, rateLimit: 90/min}
`)
	s := objs[0].Spec.(*ToolSpec)
	if s.Protocol != "rest" || s.Auth == nil || s.Auth.Type != "apiKey" {
		t.Errorf("protocol %q auth %+v", s.Protocol, s.Auth)
	}
	if s.Route == nil || s.Route.PathPrefix != "/acme/billing" {
		t.Errorf("route %+v", s.Route)
	}
	if *s.Timeouts != (Timeouts{Connect: MustDuration("2s"), Header: MustDuration("30s"), Total: MustDuration("60s")}) {
		t.Errorf("timeouts %+v", s.Timeouts)
	}
	if s.Retries.Attempts != 2 || !reflect.DeepEqual(s.Retries.On, []string{"connect-failure", "reset"}) {
		t.Errorf("retries %+v", s.Retries)
	}
	if *s.CircuitBreaker != (CircuitBreaker{ConsecutiveFailures: 5, Ejection: MustDuration("30s")}) {
		t.Errorf("circuit breaker %+v", s.CircuitBreaker)
	}
	type ann struct{ ro, de, id, ow bool }
	get := func(a *Annotations) ann { return ann{*a.ReadOnly, *a.Destructive, *a.Idempotent, *a.OpenWorld} }
	wants := []ann{{true, false, true, true}, {false, false, false, true}, {false, true, true, true}, {false, false, false, true}}
	for i, want := range wants {
		if got := get(s.Operations[i].Annotations); got != want {
			t.Errorf("operation %s annotations %+v, want %+v", s.Operations[i].Name, got, want)
		}
	}
	if s.Operations[3].RateLimit.Burst != 2 {
		t.Errorf("burst for 90/min = %d, want ceil(1.5) = 2", s.Operations[3].RateLimit.Burst)
	}
}

func TestDefaultOthers(t *testing.T) {
	objs := mustParse(t, `apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  limits: {maxHeaders: 50}
  xdp: {perSource: {burst: 0}}
---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: s, namespace: acme}
spec: {consumer: c, plan: p, tool: t}
---
apiVersion: stoa.io/v1alpha1
kind: Webhook
metadata: {name: w, namespace: acme}
spec: {url: "https://h.example", events: ["*"], secretRef: {env: S}, maxAttempts: 3}
---
apiVersion: stoa.io/v1alpha1
kind: Plan
metadata: {name: p, namespace: acme}
spec: {rateLimit: 1000/h}
`)
	g := objs[0].Spec.(*GatewaySpec)
	wantLimits := DefaultGatewayLimits
	wantLimits.MaxHeaders = 50
	if *g.Limits != wantLimits || g.CrossTenant != "forbidden" || g.XDP.Mode != "auto" || g.XDP.Count != "packets" ||
		!reflect.DeepEqual(g.XDP.Interfaces, []string{"lo"}) || g.MCP.PageSize != 100 {
		t.Errorf("gateway %+v limits %+v xdp %+v", g, g.Limits, g.XDP)
	}
	if g.XDP.PerSource.Burst != 0 {
		t.Errorf("a limit without a rate must not get a burst: %+v", g.XDP.PerSource)
	}
	if s := objs[1].Spec.(*SubscriptionSpec); s.State != "active" {
		t.Errorf("state %q", s.State)
	}
	if w := objs[2].Spec.(*WebhookSpec); w.Timeout.String() != "10s" || w.MaxAttempts != 3 {
		t.Errorf("webhook %+v", w)
	}
	if p := objs[3].Spec.(*PlanSpec); p.RateLimit.Burst != 1 {
		t.Errorf("plan burst %d, want 1", p.RateLimit.Burst)
	}
}

func TestDefaultIdempotent(t *testing.T) {
	objs, diags := Load([]string{"testdata/valid"}, nil)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	for _, o := range objs {
		Default(o)
		once := Clone(o)
		Default(o)
		if !reflect.DeepEqual(once, o) {
			a, _ := json.Marshal(once)
			b, _ := json.Marshal(o)
			t.Errorf("%s changed on the second Default:\n%s\n%s", o.Ref(), a, b)
		}
	}
	if len(objs) != 16 {
		t.Errorf("Default must not create objects: %d", len(objs))
	}
	Default(nil)
	Default(&Object{Kind: KindTool}) // no spec: nothing to do, no panic
}

func TestJSONRoundTrip(t *testing.T) {
	objs, diags := Load([]string{"testdata/valid"}, nil)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	for i, o := range objs {
		if i%2 == 0 {
			Default(o) // both raw and defaulted objects round-trip
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var back Object
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v\n%s", o.Ref(), err, b)
		}
		back.Source = o.Source
		if !reflect.DeepEqual(&back, o) {
			b2, _ := json.Marshal(&back)
			t.Errorf("%s differs after a JSON round trip:\n%s\n%s", o.Ref(), b, b2)
		}
	}
}

func TestJSONPresets(t *testing.T) {
	var s ToolSpec
	if err := json.Unmarshal([]byte(`{"upstreams":[{"url":"http://a"},{"url":"http://b","weight":0}],"retries":{"on":["5xx"]}}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Upstreams[0].Weight != 1 || s.Upstreams[1].Weight != 0 || s.Retries.Attempts != 2 {
		t.Errorf("presets: %+v %+v", s.Upstreams, s.Retries)
	}
}

func TestMaskAndClone(t *testing.T) {
	objs := mustParse(t, toolDoc)
	o := objs[0]
	o.Metadata.Annotations = map[string]string{"api-token": "abc", "Password": "x", "note": "keep", "ssh-key": "k"}
	m := Mask(o)
	want := map[string]string{"api-token": "***", "Password": "***", "note": "keep", "ssh-key": "***"}
	if !reflect.DeepEqual(m.Metadata.Annotations, want) {
		t.Errorf("masked annotations %v", m.Metadata.Annotations)
	}
	if o.Metadata.Annotations["api-token"] != "abc" {
		t.Error("Mask changed the original")
	}
	if m.Source != o.Source {
		t.Error("Mask must keep the Source")
	}
	c := Clone(o)
	c.Spec.(*ToolSpec).Operations[0].Input["type"] = "changed"
	if o.Spec.(*ToolSpec).Operations[0].Input["type"] != "object" {
		t.Error("Clone shares the input schema")
	}
	if Mask(nil) != nil || Clone(nil) != nil {
		t.Error("nil in, nil out")
	}

	type withSecret struct {
		Token string   `json:"token" secret:"true"`
		Keys  []string `json:"keys" secret:"true"`
		Plain string   `json:"plain"`
		Inner *struct {
			P string `secret:"true"`
		}
		ByName map[string]struct {
			S string `secret:"true"`
		}
	}
	v := &withSecret{Token: "t", Keys: []string{"a", ""}, Plain: "p", Inner: &struct {
		P string `secret:"true"`
	}{"x"}, ByName: map[string]struct {
		S string `secret:"true"`
	}{"k": {"y"}}}
	maskValue(reflectValue(v))
	if v.Token != "***" || v.Keys[0] != "***" || v.Keys[1] != "" || v.Plain != "p" || v.Inner.P != "***" || v.ByName["k"].S != "***" {
		t.Errorf("tagged fields not masked: %+v", v)
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	objs, diags := Load([]string{"testdata/valid"}, nil)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	for _, o := range objs {
		Default(o)
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatalf("%s: %v", o.Ref(), err)
		}
		if regexp.MustCompile(`(?mi)^\s*source:`).Match(b) {
			t.Errorf("%s: the Source leaked into YAML:\n%s", o.Ref(), b)
		}
		back, diags := Parse("back.yaml", b)
		if len(diags) > 0 || len(back) != 1 {
			t.Fatalf("%s: re-parse: %v\n%s", o.Ref(), diags, b)
		}
		back[0].Source = o.Source
		if !reflect.DeepEqual(back[0], o) {
			t.Errorf("%s differs after a YAML round trip:\n%s", o.Ref(), b)
		}
	}
}
