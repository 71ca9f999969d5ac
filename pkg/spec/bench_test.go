package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// genTools writes a spec set of 20 tenants and n tools spread over them,
// in files of 500 documents each, and returns the directory.
func genTools(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	var b strings.Builder
	for t := 0; t < 20; t++ {
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: tenant-%d\nspec:\n  identity:\n    issuer: https://idp.example.com/realms/t%d\n", t, t)
	}
	write := func(i int) {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("tools-%03d.yaml", i)), []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		b.Reset()
	}
	file := 0
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata:
  name: tool-%d
  namespace: tenant-%d
  labels: {team: team-%d}
spec:
  description: Generated tool number %d.
  upstream: http://127.0.0.1:9001/api/%d
  auth:
    type: oauth2
  rateLimit: 100/s
  timeouts: {connect: 1s, total: 20s}
  operations:
    - name: get_item
      method: GET
      path: /items/{id}
      description: Fetch one item by id.
      input:
        type: object
        properties: {id: {type: string}}
        required: [id]
    - name: create_item
      method: POST
      path: /items
      input:
        type: object
        properties:
          name: {type: string, maxLength: 100}
          count: {type: integer, minimum: 0}
      rateLimit: {rate: 10/s, burst: 5}
`, i, i%20, i%7, i, i)
		if (i+1)%500 == 0 {
			write(file)
			file++
		}
	}
	if b.Len() > 0 {
		write(file)
	}
	return dir
}

// BenchmarkLoadDefaultValidate measures the whole CLI path for 10,000 Tool
// documents across 20 tenants: read, parse, decode, default and validate.
// The goccy-only variant turns the fast parser off, for comparison.
func BenchmarkLoadDefaultValidate(b *testing.B) {
	dir := genTools(b, 10000)
	for _, bc := range []struct {
		name      string
		goccyOnly bool
	}{{"fast", false}, {"goccy-only", true}} {
		b.Run(bc.name, func(b *testing.B) {
			goccyOnly = bc.goccyOnly
			defer func() { goccyOnly = false }()
			b.ReportAllocs()
			cpu := processCPUTime()
			for b.Loop() {
				objs, diags := Load([]string{dir}, nil)
				for _, o := range objs {
					Default(o)
				}
				diags = append(diags, Validate(objs, ValidateOptions{})...)
				if len(diags) > 0 || len(objs) != 10020 {
					b.Fatalf("%d objects, diagnostics:\n%v", len(objs), diags)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU adds the CPU time per operation (all threads) to the results.
func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 {
		return
	}
	b.ReportMetric(float64(processCPUTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// BenchmarkValidate measures Validate alone on 10,000 defaulted tools.
func BenchmarkValidate(b *testing.B) {
	objs, diags := Load([]string{genTools(b, 10000)}, nil)
	if len(diags) > 0 {
		b.Fatal(diags)
	}
	for _, o := range objs {
		Default(o)
	}
	b.ReportAllocs()
	cpu := processCPUTime()
	for b.Loop() {
		if d := Validate(objs, ValidateOptions{}); len(d) > 0 {
			b.Fatal(d)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkValidatePolicies measures what policies add to Validate: 1,000
// Tools with a two-rule policy each. cold: all different, none compiled
// before (the first validation); warm: the same again (stoad validating
// the next apply); same: one policy on every Tool.
func BenchmarkValidatePolicies(b *testing.B) {
	for _, bc := range []struct {
		name           string
		distinct, cold bool
	}{{"cold", true, true}, {"warm", true, false}, {"same", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			var sb strings.Builder
			sb.WriteString("apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec: {}\n")
			for i := range 1000 {
				group := "staff"
				if bc.distinct {
					group = fmt.Sprintf("staff-%d", i)
				}
				fmt.Fprintf(&sb, "---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t-%d, namespace: acme}\nspec:\n  upstream: http://127.0.0.1:1\n"+
					"  policy:\n    rules:\n      - {name: no-deletes, deny: request.method == \"DELETE\"}\n      - {name: staff, allow: '%q in caller.groups'}\n", i, group)
			}
			objs, diags := Parse("t.yaml", []byte(sb.String()))
			if len(diags) > 0 {
				b.Fatal(diags)
			}
			for _, o := range objs {
				Default(o)
			}
			Validate(objs, ValidateOptions{})
			b.ReportAllocs()
			cpu := processCPUTime()
			for b.Loop() {
				if bc.cold {
					compiledPolicies.mu.Lock()
					compiledPolicies.m = nil
					compiledPolicies.mu.Unlock()
				}
				if d := Validate(objs, ValidateOptions{}); len(d) > 0 {
					b.Fatal(d)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
