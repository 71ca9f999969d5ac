package spec_test

// The engines that run the new Gateway and Tool fields validate their own
// configuration (federation.Config.Validate, tracing.Config.Problems), and
// they import pkg/spec, so pkg/spec cannot call them. These tests keep the
// two in step: a spec that validation accepts is a configuration the
// engine accepts, and what the engine refuses, validation refuses at the
// same field.

import (
	"errors"
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// load parses, defaults and validates one document set the way stoad does.
func load(t *testing.T, in string) ([]*spec.Object, spec.Diagnostics) {
	t.Helper()
	objs, diags := spec.Parse("t.yaml", []byte(in))
	for _, o := range objs {
		spec.Default(o)
	}
	diags = append(diags, spec.Validate(objs, spec.ValidateOptions{SkipReferences: true})...)
	return objs, diags
}

// federationConfig maps a federated Tool onto the engine's Config, as the
// daemon will.
func federationConfig(o *spec.Object) federation.Config {
	s := o.Spec.(*spec.ToolSpec)
	m := s.MCP
	c := federation.Config{
		Tenant: o.Metadata.Namespace, Tool: o.Metadata.Name,
		Transport: federation.Transport(m.Transport), URL: m.URL, ProtocolVersion: m.ProtocolVersion,
		Command: m.Command, Dir: m.Dir, InheritEnv: m.InheritEnv,
		Timeout: m.Timeout.D(), ConnectTimeout: m.ConnectTimeout.D(),
	}
	if a := s.UpstreamAuth; a != nil {
		c.Auth = &federation.Auth{Header: a.Header, Prefix: a.Prefix, SecretRef: a.SecretRef}
	}
	for _, e := range m.Env {
		c.Env = append(c.Env, federation.EnvVar{Name: e.Name, Value: e.Value, SecretRef: e.SecretRef})
	}
	if l := m.Limits; l != nil {
		c.Limits = federation.Limits{
			MemoryBytes: uint64(max(l.Memory.Bytes(), 0)),
			CPUSeconds:  uint64(math.Ceil(l.CPU.D().Seconds())),
			OpenFiles:   uint64(max(l.OpenFiles, 0)),
			Processes:   uint64(max(l.Processes, 0)),
		}
	}
	if f := m.Tools; f != nil {
		c.Tools = federation.ToolFilter{Filter: federation.Filter{Allow: f.Allow, Deny: f.Deny}, Rename: f.Rename}
	}
	if r := m.Resources; r != nil {
		c.Resources = federation.ResourceFilter{Expose: r.Expose, Filter: federation.Filter{Allow: r.Allow, Deny: r.Deny}}
	}
	return c
}

// normPath writes map keys of a path as .key, the engines' way.
func normPath(p string) string {
	for {
		i := strings.Index(p, `["`)
		if i < 0 {
			return p
		}
		q, err := strconv.QuotedPrefix(p[i+1:])
		if err != nil {
			return p
		}
		k, _ := strconv.Unquote(q)
		p = p[:i] + "." + k + p[i+1+len(q)+1:]
	}
}

// covered reports whether a spec error lies at, under or above path, or
// at one of the alternatives (where the spec points at a finer place
// than the engine, or at the field to change).
func covered(diags spec.Diagnostics, path string, alternatives ...string) bool {
	for _, d := range diags {
		if !d.IsError() {
			continue
		}
		dp := normPath(d.Path)
		for _, want := range append([]string{path}, alternatives...) {
			if dp == want || strings.HasPrefix(dp, want+".") || strings.HasPrefix(dp, want+"[") || strings.HasPrefix(want, dp+".") {
				return true
			}
		}
	}
	return false
}

func TestFederationConfigConformance(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process limits are refused by the engine off Linux (a property of the host stoad runs on, not of the spec)")
	}
	const head = "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: up, namespace: acme}\nspec:\n  protocol: mcp\n"
	long := strings.Repeat("x", 60)
	bodies := []string{
		// Accepted.
		"  mcp: {url: https://mcp.example.com/mcp}\n",
		"  mcp: {url: http://127.0.0.1:9000/mcp?k=v, protocolVersion: 2026-07-28, timeout: 1s, connectTimeout: 2s}\n  upstreamAuth: {header: X-Api-Key, secretRef: {env: K}}\n",
		"  mcp: {command: [npx, -y, srv], dir: /srv, env: [{name: A, value: b}, {name: T, secretRef: {file: /t}}], inheritEnv: [HTTPS_PROXY], limits: {memory: 1Gi, cpu: 90s, openFiles: 64, processes: 8}}\n",
		"  mcp:\n    url: https://x/mcp\n    tools: {allow: [\"get_*\", list], deny: [\"*secret*\"], rename: {get_issue: issue, list: ls}}\n    resources: {expose: true, allow: [\"file:///*\"]}\n",
		"  mcp: {transport: stdio, command: [/usr/bin/srv], protocolVersion: 2025-06-18}\n",
		// Refused.
		"  mcp: {timeout: 5s}\n",
		"  mcp: {transport: sse, url: https://x/mcp}\n",
		"  mcp: {transport: streamable-http}\n",
		"  mcp: {transport: streamable-http, command: [npx]}\n",
		"  mcp: {transport: stdio, url: https://x/mcp}\n",
		"  mcp: {transport: stdio}\n",
		"  mcp: {url: ftp://x/mcp}\n",
		"  mcp: {url: \"https://u:p@x/mcp\"}\n",
		"  mcp: {url: \"https://x/mcp#f\"}\n",
		"  mcp: {url: https://x/mcp, dir: /srv}\n",
		"  mcp: {url: https://x/mcp, env: [{name: A, value: b}]}\n",
		"  mcp: {url: https://x/mcp, inheritEnv: [A]}\n",
		"  mcp: {url: https://x/mcp, limits: {openFiles: 5}}\n",
		"  mcp: {url: https://x/mcp}\n  upstreamAuth: {header: Content-Type, secretRef: {env: K}}\n",
		"  mcp: {url: https://x/mcp}\n  upstreamAuth: {header: \"X Key\", secretRef: {env: K}}\n",
		"  mcp: {url: https://x/mcp}\n  upstreamAuth: {prefix: \"a\\r\", secretRef: {env: K}}\n",
		"  mcp: {url: https://x/mcp}\n  upstreamAuth: {secretRef: {env: K, file: /k}}\n",
		"  mcp: {url: https://x/mcp}\n  upstreamAuth: {header: X-Key}\n",
		"  mcp: {url: https://x/mcp, protocolVersion: 2024-11-05}\n",
		"  mcp: {command: [npx], protocolVersion: 2026-07-28}\n",
		"  mcp: {command: [npx]}\n  upstreamAuth: {secretRef: {env: K}}\n",
		"  mcp: {command: [\"\"]}\n",
		"  mcp: {command: [npx], env: [{name: \"A=B\", value: x}]}\n",
		"  mcp: {command: [npx], env: [{value: x}]}\n",
		"  mcp: {command: [npx], env: [{name: A, value: x}, {name: A, value: y}]}\n",
		"  mcp: {command: [npx], env: [{name: A, value: x, secretRef: {env: B}}]}\n",
		"  mcp: {command: [npx], env: [{name: A, value: \"a\\0b\"}]}\n",
		"  mcp: {url: https://x/mcp, tools: {allow: [\"\"]}}\n",
		"  mcp: {url: https://x/mcp, tools: {deny: [\"\"]}}\n",
		"  mcp: {url: https://x/mcp, tools: {rename: {a: \"\"}}}\n",
		"  mcp: {url: https://x/mcp, tools: {rename: {a: \"b c\"}}}\n",
		"  mcp: {url: https://x/mcp, tools: {rename: {\"a.b\": " + long + "}}}\n",
		"  mcp: {url: https://x/mcp, tools: {rename: {a: c, b: c}}}\n",
		"  mcp: {url: https://x/mcp, tools: {deny: [\"w*\"], rename: {write: put}}}\n",
		"  mcp: {url: https://x/mcp, tools: {allow: [\"get_*\"], rename: {list: ls}}}\n",
		"  mcp: {url: https://x/mcp, timeout: -1s}\n",
		"  mcp: {url: https://x/mcp, connectTimeout: -1s}\n",
	}
	accepted := 0
	for _, body := range bodies {
		for _, name := range []string{"up", strings.Repeat("t", 55)} {
			in := strings.Replace(head, "name: up,", "name: "+name+",", 1) + body
			objs, diags := load(t, in)
			if len(objs) != 1 || objs[0].Spec.(*spec.ToolSpec).MCP == nil {
				t.Fatalf("%s: did not decode: %v", in, diags)
			}
			cfg := federationConfig(objs[0])
			var problems []federation.Problem
			if err := cfg.Validate(); err != nil {
				var ce *federation.ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("Validate: %v", err)
				}
				problems = ce.Problems
			}
			if !diags.HasErrors() {
				accepted++
				if len(problems) > 0 {
					t.Errorf("validation accepts a Config the engine refuses:\n%s\nengine: %v", in, problems)
				}
				continue
			}
			for _, p := range problems {
				path := strings.Replace(p.Path, "spec.mcp.upstreamAuth", "spec.upstreamAuth", 1)
				var alt []string
				switch path {
				case "spec.mcp":
					alt = []string{"metadata.name"}
				case "spec.mcp.command":
					alt = []string{"spec.mcp.dir", "spec.mcp.env", "spec.mcp.inheritEnv", "spec.mcp.limits", "spec.mcp.transport"}
				case "spec.mcp.url":
					alt = []string{"spec.mcp.transport"}
				case "spec.mcp.timeout":
					alt = []string{"spec.mcp.connectTimeout"}
				}
				if !covered(diags, path, alt...) {
					t.Errorf("the engine refuses %s (%s), validation does not say so there:\n%s\nvalidation: %v", p.Path, p.Message, in, diags)
				}
			}
		}
	}
	if accepted < 5 {
		t.Errorf("only %d accepted specs: the test lost its positive cases", accepted)
	}
}

// tracingConfig maps spec.tracing onto the engine's Config, as the daemon
// will.
func tracingConfig(tr *spec.Tracing) tracing.Config {
	c := tracing.Config{
		Enabled: tr.Enabled, Endpoint: tr.Endpoint, Accept: tr.Accept, ServiceName: tr.ServiceName,
		ResourceAttributes: tr.ResourceAttributes, Compression: tr.Compression, CAFile: tr.CAFile,
		ExportTimeout: tr.ExportTimeout.D(), BatchTimeout: tr.BatchTimeout.D(), QueueSize: tr.QueueSize, DrainTimeout: tr.DrainTimeout.D(),
	}
	if tr.SampleRatio != nil {
		c.SampleRatio = *tr.SampleRatio
	}
	for _, h := range tr.Headers {
		if h.SecretRef != nil {
			if c.SecretHeaders == nil {
				c.SecretHeaders = map[string]spec.SecretRef{}
			}
			c.SecretHeaders[h.Name] = *h.SecretRef
			continue
		}
		if c.Headers == nil {
			c.Headers = map[string]string{}
		}
		c.Headers[h.Name] = h.Value
	}
	for _, s := range tr.TrustedClients {
		if p, err := netip.ParsePrefix(s); err == nil {
			c.Trusted = append(c.Trusted, p)
		}
	}
	return c
}

func TestTracingConfigConformance(t *testing.T) {
	const head = "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n  tracing:\n    enabled: true\n"
	var many strings.Builder
	many.WriteString("    endpoint: http://c:4318\n    headers:\n")
	for i := range 33 {
		many.WriteString("      - {name: X-H" + strconv.Itoa(i) + ", value: v}\n")
	}
	bodies := []string{
		// Accepted.
		"    endpoint: http://collector:4318/v1/traces\n",
		"    endpoint: https://otel.example.com\n    sampleRatio: 0\n    accept: none\n    compression: gzip\n    headers: [{name: X-Scope, value: a}, {name: Authorization, secretRef: {env: T}}]\n    resourceAttributes: {deployment.environment.name: prod}\n    exportTimeout: 1s\n    queueSize: 10\n",
		"    endpoint: http://[::1]:4318/v1/traces\n    sampleRatio: 1\n    accept: all\n    trustedClients: [10.0.0.0/8]\n",
		// Refused.
		"    sampleRatio: 0.5\n",
		"    endpoint: collector:4318\n",
		"    endpoint: ftp://collector/v1/traces\n",
		"    endpoint: \"http://u:p@collector:4318\"\n",
		"    endpoint: \"http://collector:4318#x\"\n",
		"    endpoint: http://:4318/v1/traces\n",
		"    endpoint: http://c:4318\n    sampleRatio: 1.01\n",
		"    endpoint: http://c:4318\n    sampleRatio: -0.1\n",
		"    endpoint: http://c:4318\n    accept: some\n",
		"    endpoint: http://c:4318\n    compression: zstd\n",
		"    endpoint: http://c:4318\n    headers: [{name: \"X H\", value: v}]\n",
		"    endpoint: http://c:4318\n    headers: [{name: Host, value: v}]\n",
		"    endpoint: http://c:4318\n    headers: [{name: Content-Encoding, secretRef: {env: T}}]\n",
		"    endpoint: http://c:4318\n    headers: [{name: X-A, value: \"a\\nb\"}]\n",
		"    endpoint: http://c:4318\n    headers: [{name: X-A, value: a}, {name: X-A, secretRef: {env: T}}]\n",
		"    endpoint: http://c:4318\n    headers: [{name: X-A, secretRef: {}}]\n",
		"    endpoint: http://c:4318\n    resourceAttributes: {service.name: x}\n",
		"    endpoint: http://c:4318\n    exportTimeout: -1s\n",
		"    endpoint: http://c:4318\n    queueSize: -1\n",
		many.String(),
	}
	accepted := 0
	for _, body := range bodies {
		objs, diags := load(t, head+body)
		if len(objs) != 1 {
			t.Fatalf("%s: did not decode: %v", body, diags)
		}
		tr := objs[0].Spec.(*spec.GatewaySpec).Tracing
		cfg := tracingConfig(tr)
		problems := cfg.Problems()
		if !diags.HasErrors() {
			accepted++
			if len(problems) > 0 {
				t.Errorf("validation accepts a Config the engine refuses:\n%s\nengine: %v", body, problems)
			}
			continue
		}
		for _, p := range problems {
			path := "spec.tracing." + p.Field
			if name, ok := strings.CutPrefix(p.Field, "headers."); ok {
				for i, h := range tr.Headers {
					if h.Name == name {
						path = "spec.tracing.headers[" + strconv.Itoa(i) + "]"
					}
				}
			}
			if !covered(diags, path) {
				t.Errorf("the engine refuses %s (%s), validation does not say so there:\n%s\nvalidation: %v", p.Field, p.Message, body, diags)
			}
		}
	}
	if accepted < 3 {
		t.Errorf("only %d accepted specs", accepted)
	}
}
