package spec

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"testing"
)

// TestNewFieldsAbsentUnlessWritten: objects that do not use the new fields
// encode as before (no new key, not even after Default), so their stored
// digests do not change; objects that do get their defaults.
func TestNewFieldsAbsentUnlessWritten(t *testing.T) {
	objs := mustParse(t, `apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: acme}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: t, namespace: acme}
spec: {upstream: "http://127.0.0.1:1"}
---
apiVersion: stoa.io/v1alpha1
kind: ToolSet
metadata: {name: s, namespace: acme}
spec: {tools: [t]}
`)
	for _, o := range objs {
		b, _ := json.Marshal(o)
		for _, key := range []string{`"access"`, `"policy"`, `"tracing"`, `"redis"`, `"backend"`, `"federation"`, `"mcp":{"url"`, `"transport"`} {
			if bytes.Contains(b, []byte(key)) {
				t.Errorf("%s gained %s:\n%s", o.Ref(), key, b)
			}
		}
	}
	gw := objs[0].Spec.(*GatewaySpec)
	if gw.LimitsBackend() != "local" || (&GatewaySpec{}).LimitsBackend() != "local" || (*GatewaySpec)(nil).LimitsBackend() != "local" {
		t.Error("the default backend is local")
	}

	objs = mustParse(t, `apiVersion: stoa.io/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  access: {}
  tracing: {enabled: true, endpoint: "http://c:4318"}
  redis: {address: "127.0.0.1:6379", leaseWindow: 0s}
`)
	g := objs[0].Spec.(*GatewaySpec)
	if g.Access.GroupsClaim != "groups" {
		t.Errorf("groupsClaim %q", g.Access.GroupsClaim)
	}
	tr := g.Tracing
	if tr.SampleRatio == nil || *tr.SampleRatio != 1 || tr.Accept != "trusted" || tr.ServiceName != "stoad" || tr.Compression != "none" ||
		tr.ExportTimeout.String() != "10s" || tr.BatchTimeout.String() != "5s" || tr.QueueSize != 2048 || tr.DrainTimeout.String() != "30s" {
		t.Errorf("tracing defaults: %+v", tr)
	}
	r := g.Redis
	if r.Prefix != "stoa:" || r.FailMode != "open" || r.LeaseWindow.String() != "0s" || r.LeaseTTL.String() != "1s" ||
		r.Accuracy != 0.01 || r.Timeout.String() != "100ms" || r.DialTimeout.String() != "1s" {
		t.Errorf("redis defaults (an explicit 0s lease window stays): %+v", r)
	}
	if diags := Validate(objs, ValidateOptions{}); diags.HasErrors() {
		t.Errorf("defaulted blocks are invalid: %v", diags)
	}
}

// TestDecodeNumbers: a float field takes integers and decimals; quoted
// numbers, booleans and !!str get a type error with a hint.
func TestDecodeNumbers(t *testing.T) {
	doc := func(v string) string {
		return "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n  tracing: {sampleRatio: " + v + "}\n"
	}
	for _, tc := range []struct {
		in   string
		want float64
	}{{"0.25", 0.25}, {"1", 1}, {"0", 0}, {"1e-1", 0.1}, {".5", 0.5}} {
		objs, diags := Parse("t.yaml", []byte(doc(tc.in)))
		if len(diags) > 0 || *objs[0].Spec.(*GatewaySpec).Tracing.SampleRatio != tc.want {
			t.Errorf("%s: %v %v", tc.in, diags, objs)
		}
	}
	for _, tc := range []struct{ in, msg, hint string }{
		{`"0.5"`, "expected a number", "remove the quotes: 0.5"},
		{"true", "expected a number", ""},
		{"!!str 0.5", "expected a number", ""},
		{".inf", "infinity and NaN", "write a number such as 0.5"},
		{"[1]", "expected a number", ""},
	} {
		_, diags := Parse("t.yaml", []byte(doc(tc.in)))
		if len(diags) != 1 || !strings.Contains(diags[0].Message, tc.msg) || diags[0].Hint != tc.hint || diags[0].Path != "spec.tracing.sampleRatio" {
			t.Errorf("%s: %v", tc.in, diags)
		}
	}
}

func TestQuantity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"0", 0}, {"1048576", 1 << 20}, {"512Mi", 512 << 20}, {"2Gi", 2 << 30}, {"1G", 1e9}, {"3k", 3000}, {"7Ei", 7 << 60}} {
		q, err := NewQuantity(tc.in)
		if err != nil || q.Bytes() != tc.want || q.String() != tc.in {
			t.Errorf("%s: %v %v", tc.in, q.Bytes(), err)
		}
	}
	for _, bad := range []string{"", "Mi", "1.5Gi", "-1", "2GB", "1 Gi", "8Ei", "9223372036854775808", "0x10", "+1"} {
		if _, err := NewQuantity(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// YAML: a plain integer is a byte count; JSON: a string or a number.
	doc := "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t, namespace: acme}\nspec:\n  protocol: mcp\n  mcp: {command: [x], limits: {memory: %s}}\n"
	for in, want := range map[string]int64{"1048576": 1 << 20, "64Mi": 64 << 20, `"1Ki"`: 1024} {
		objs, diags := Parse("t.yaml", []byte(strings.Replace(doc, "%s", in, 1)))
		if len(diags) > 0 || objs[0].Spec.(*ToolSpec).MCP.Limits.Memory.Bytes() != want {
			t.Errorf("%s: %v", in, diags)
		}
	}
	for _, in := range []string{"true", "[1]", "-5Mi"} {
		_, diags := Parse("t.yaml", []byte(strings.Replace(doc, "%s", in, 1)))
		if len(diags) != 1 || diags[0].Path != "spec.mcp.limits.memory" || diags[0].Line != 6 {
			t.Errorf("%s: %v", in, diags)
		}
	}
	var l ProcessLimits
	if err := json.Unmarshal([]byte(`{"memory": 4096}`), &l); err != nil || l.Memory.Bytes() != 4096 || l.Memory.String() != "4096" {
		t.Errorf("JSON number: %v %+v", err, l)
	}
	if err := json.Unmarshal([]byte(`{"memory": "2Gi"}`), &l); err != nil || l.Memory.Bytes() != 2<<30 {
		t.Errorf("JSON string: %v %+v", err, l)
	}
	if err := json.Unmarshal([]byte(`{"memory": "2GB"}`), &l); err == nil {
		t.Error("JSON accepted 2GB")
	}
	if b, _ := json.Marshal(ProcessLimits{Memory: MustQuantity("2Gi")}); string(b) != `{"memory":"2Gi"}` {
		t.Errorf("marshal: %s", b)
	}
	if b, _ := json.Marshal(ProcessLimits{}); string(b) != `{}` {
		t.Errorf("an unset quantity is omitted: %s", b)
	}
}

// FuzzParseQuantity checks NewQuantity never panics, keeps the text, and
// agrees with exact arithmetic on the value.
func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"0", "512Mi", "2Gi", "1G", "3k", "7Ei", "8Ei", "", "Mi", "-1", "1.5Gi", "9223372036854775807", "9223372036854775808", "00012Ki"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := NewQuantity(s)
		num, factor := s, int64(1)
		for _, u := range quantityUnits {
			if rest, ok := strings.CutSuffix(s, u.suffix); ok {
				num, factor = rest, u.factor
				break
			}
		}
		digits := num != "" && strings.Trim(num, "0123456789") == ""
		exact, ok := new(big.Int).SetString(num, 10)
		fits := digits && ok && exact.Mul(exact, big.NewInt(factor)).IsInt64()
		if (err == nil) != fits {
			t.Fatalf("NewQuantity(%q) = %v, %v; representable: %v", s, q.Bytes(), err, fits)
		}
		if err != nil {
			return
		}
		if q.Bytes() != exact.Int64() || q.String() != s || q.Bytes() < 0 {
			t.Fatalf("NewQuantity(%q) = %d (%q), want %s", s, q.Bytes(), q.String(), exact)
		}
		var back Quantity
		if err := json.Unmarshal([]byte(strconv.Quote(s)), &back); err != nil || back != q {
			t.Fatalf("JSON %q: %v %+v", s, err, back)
		}
	})
}

func TestSplitSubject(t *testing.T) {
	for _, tc := range []struct{ in, issuer, sub string }{
		{"alice", "", "alice"},
		{"user#1", "", "user#1"},
		{"https://idp.example.com/realms/acme#alice", "https://idp.example.com/realms/acme", "alice"},
		{"https://idp.example.com#a#b", "https://idp.example.com", "a#b"},
		{"HTTP://idp#x", "HTTP://idp", "x"},
		{"https://idp.example.com", "https://idp.example.com", ""},
	} {
		if iss, sub := SplitSubject(tc.in); iss != tc.issuer || sub != tc.sub {
			t.Errorf("SplitSubject(%q) = %q, %q", tc.in, iss, sub)
		}
	}
}

// TestClusterAdminPinning: cluster admins matched without an issuer are
// warned about, per matcher: an iss in claims pins the claims alone.
func TestClusterAdminPinning(t *testing.T) {
	doc := func(admins string) string {
		return "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n  access:\n    admins: " + admins + "\n"
	}
	for admins, loose := range map[string]string{
		`{subjects: ["https://idp#alice"]}`:                           "",
		`{claims: {iss: "https://idp", role: admin}}`:                 "",
		`{subjects: ["https://idp#a"], claims: {iss: "https://idp"}}`: "",
		`{groups: [ops]}`: "groups",
		`{groups: [ops], claims: {iss: "https://idp", role: admin}}`:   "groups",
		`{subjects: [alice, "https://idp#bob"]}`:                       "subjects",
		`{claims: {role: admin}}`:                                      "claims",
		`{groups: [ops], subjects: [alice], claims: {role: admin}}`:    "groups and subjects and claims",
		`{groups: [ops], subjects: ["https://idp#a"], claims: {a: b}}`: "groups and claims",
	} {
		_, diags := runPipelineText(doc(admins), ValidateOptions{})
		d := findDiag(diags, "spec.access.admins", "not pinned")
		switch {
		case loose == "" && d != nil:
			t.Errorf("%s: %v", admins, d)
		case loose != "" && (d == nil || d.Severity != SeverityWarning || !strings.Contains(d.Message, "matched by "+loose+" are")):
			t.Errorf("%s: want a warning about %s, got %v", admins, loose, diags)
		}
		if diags.HasErrors() {
			t.Errorf("%s: %v", admins, diags)
		}
	}
	_, diags := runPipelineText(doc("{}"), ValidateOptions{})
	if d := findDiag(diags, "spec.access.admins", "names no cluster admin"); d == nil || !d.IsError() {
		t.Errorf("an empty admins matcher: %v", diags)
	}
}

func TestGatewayFleetProblems(t *testing.T) {
	gw := func(spec string) string {
		return "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n" + spec
	}
	for _, tc := range []struct {
		name, spec, path, msg string
		sev                   Severity
	}{
		{"redis backend without redis", "  limits: {backend: redis}\n", "spec.limits.backend", "needs spec.redis", SeverityError},
		{"redis unused", "  redis: {address: \"127.0.0.1:6379\"}\n", "spec.redis", "not used", SeverityWarning},
		{"redis neither", "  limits: {backend: redis}\n  redis: {db: 1}\n", "spec.redis", "missing address or sentinel", SeverityError},
		{"redis scheme", "  limits: {backend: redis}\n  redis: {address: \"redis://h:6379\"}\n", "spec.redis.address", "without a scheme", SeverityError},
		{"redis port", "  limits: {backend: redis}\n  redis: {address: \"h:0\"}\n", "spec.redis.address", "invalid port", SeverityError},
		{"redis host", "  limits: {backend: redis}\n  redis: {address: \":6379\"}\n", "spec.redis.address", "missing host", SeverityError},
		{"sentinel addresses", "  limits: {backend: redis}\n  redis: {sentinel: {master: m}}\n", "spec.redis.sentinel.addresses", "missing Sentinel addresses", SeverityError},
		{"password secretRef", "  limits: {backend: redis}\n  redis: {address: \"127.0.0.1:6379\", password: {secretRef: {}}}\n", "spec.redis.password.secretRef", "missing secretRef", SeverityError},
		{"cleartext password", "  limits: {backend: redis}\n  redis: {address: \"redis.internal:6379\", password: {secretRef: {env: P}}}\n", "spec.redis.password", "unencrypted", SeverityWarning},
		{"cleartext to sentinels", "  limits: {backend: redis}\n  redis: {sentinel: {master: m, addresses: [\"127.0.0.1:26379\", \"10.0.0.2:26379\"]}, password: {secretRef: {env: P}}}\n", "spec.redis.password", "unencrypted", SeverityWarning},
		{"relative caFile", "  limits: {backend: redis}\n  redis: {address: \"h:1\", tls: true, caFile: ca.pem}\n", "spec.redis.caFile", "absolute path", SeverityError},
		{"tracing missing endpoint", "  tracing: {enabled: true}\n", "spec.tracing.endpoint", "missing endpoint", SeverityError},
		{"tracing off still checked", "  tracing: {enabled: false, endpoint: \"collector:4318\"}\n", "spec.tracing.endpoint", "invalid endpoint", SeverityError},
		{"tracing headers", "  tracing:\n    endpoint: http://c:4318\n    headers: [{name: X-Token, value: abc}]\n", "spec.tracing.headers[0].value", "looks like a credential", SeverityWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := runPipelineText(gw(tc.spec), ValidateOptions{})
			d := findDiag(diags, tc.path, tc.msg)
			if d == nil || d.Severity != tc.sev || d.Line == 0 || d.Hint == "" {
				t.Fatalf("want a %s at %s containing %q with a hint, got:\n%v", tc.sev, tc.path, tc.msg, diags)
			}
		})
	}
	for _, ok := range []string{
		"  tracing: {enabled: false}\n",
		"  limits: {backend: local}\n",
		"  limits: {backend: redis}\n  redis: {address: \"localhost:6379\", password: {secretRef: {env: P}}}\n",
		"  limits: {backend: redis}\n  redis: {address: \"[::1]:6379\", username: u, password: {secretRef: {env: P}}}\n",
		"  limits: {backend: redis}\n  redis: {address: \"redis.internal:6379\", tls: true, password: {secretRef: {env: P}}}\n",
	} {
		if _, diags := runPipelineText(gw(ok), ValidateOptions{}); len(diags) > 0 {
			t.Errorf("%s: %v", ok, diags)
		}
	}
}

// TestTenantAccess covers what the golden file does not: valid entries
// pass, and roles are suggested.
func TestTenantAccess(t *testing.T) {
	doc := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec:\n  access:\n%s"
	for _, ok := range []string{
		"    - {role: viewer, groups: [a]}\n    - {role: editor, groups: [a]}\n",
		"    - {role: admin, subjects: [alice, \"https://idp.example.com/realms/acme#alice\"]}\n",
		"    - {role: viewer, claims: {realm_access.roles: staff, \"https://example.com/dept\": finance}}\n",
	} {
		if _, diags := runPipelineText(strings.Replace(doc, "%s", ok, 1), ValidateOptions{}); len(diags) > 0 {
			t.Errorf("%s: %v", ok, diags)
		}
	}
	for role, hint := range map[string]string{"Viewer": `did you mean "viewer"?`, "owner": "Gateway's spec.access.admins", "read": "one of viewer, editor, admin"} {
		_, diags := runPipelineText(strings.Replace(doc, "%s", "    - {role: "+role+", groups: [a]}\n", 1), ValidateOptions{})
		if d := findDiag(diags, "spec.access[0].role", "unknown role"); d == nil || !strings.Contains(d.Hint, hint) {
			t.Errorf("%s: %v", role, diags)
		}
	}
}
