package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestMCPPerf measures, in one run on loopback against the example
// upstream through a real stoad (figures, not assertions; see
// scripts/mcp-bench.sh and docs/mcp.md):
//
//   - tools/call over Streamable HTTP (wrk, POST) — stoad's MCP server;
//   - (a) the same upstream request proxied as plain HTTP through stoad;
//   - (b) a reference MCP server on the official Go SDK (stateless, JSON
//     responses, the same code as pkg/mcp/internal/refserver) calling the
//     same upstream with the same schema validation;
//   - tools/list first page latency for a tenant with 10,000 tools.
//
// It runs only with STOA_MCP_BENCH=1 and needs wrk.
func TestMCPPerf(t *testing.T) {
	if os.Getenv("STOA_MCP_BENCH") != "1" {
		t.Skip("set STOA_MCP_BENCH=1 (scripts/mcp-bench.sh) to measure")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed")
	}
	dur := envOr("STOA_MCP_BENCH_DURATION", "8s")
	conns := envOr("STOA_MCP_BENCH_CONNS", "32")

	up := startUpstreams(t)
	specs := t.TempDir()
	writeBenchSpecs(t, specs, up)
	// STOA_MCP_BENCH_PROFILE=prefix writes a CPU profile of stoad during
	// each MCP tools/call run to prefix-legacy.pprof and prefix-modern.pprof,
	// and during the plain proxy run to prefix-plain.pprof.
	profile := os.Getenv("STOA_MCP_BENCH_PROFILE")
	args := []string{"--log-level", "warn"}
	if profile != "" {
		args = append(args, "--pprof")
	}
	d := NewDaemon(t, args...)
	d.Start()
	expect(t, d.Stoa("apply", "-f", specs), 0, "apply bench specs")
	benchKey := (&mcpEnv{t: t, D: d}).createKey("bench", "bot")
	largeKey := (&mcpEnv{t: t, D: d}).createKey("large", "bot")

	mcpURL := "http://" + d.Listen + "/mcp"
	call := `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"bench__stock__get_stock","arguments":{"sku":"abc-123"}}}`
	_, _, body := rawPost(t, nil, mcpURL, call, "Authorization: Bearer "+benchKey)
	if !strings.Contains(string(body), `"inStock":49`) || strings.Contains(string(body), "isError") {
		t.Fatalf("bench call does not work: %s", body)
	}

	refURL := startRefServer(t, up)
	_, _, body = rawPost(t, nil, refURL, call)
	if !strings.Contains(string(body), `inStock`) || strings.Contains(string(body), `"isError":true`) {
		t.Fatalf("reference server call does not work: %s", body)
	}

	type result struct {
		name      string
		rps       float64
		p50, p99  string
		non2xx    string
		transfers string
		cpu       float64 // stoad CPU µs per request
	}
	run := func(name, url, method, body string, headers map[string]string) result {
		script := filepath.Join(t.TempDir(), "req.lua")
		var lua strings.Builder
		fmt.Fprintf(&lua, "wrk.method = %q\n", method)
		if body != "" {
			fmt.Fprintf(&lua, "wrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", body)
			// MCP clients must accept both; the SDK refuses requests without.
			lua.WriteString("wrk.headers[\"Accept\"] = \"application/json, text/event-stream\"\n")
		}
		for k, v := range headers {
			fmt.Fprintf(&lua, "wrk.headers[%q] = %q\n", k, v)
		}
		os.WriteFile(script, []byte(lua.String()), 0o644)
		if profile != "" && strings.HasPrefix(name, "stoad ") {
			secs := strings.TrimSuffix(dur, "s")
			file := profile + "-legacy.pprof"
			switch {
			case strings.Contains(name, "2026"):
				file = profile + "-modern.pprof"
			case strings.Contains(name, "plain"):
				file = profile + "-plain.pprof"
			}
			go func() {
				resp, err := http.Get("http://" + d.Ops + "/debug/pprof/profile?seconds=" + secs)
				if err != nil {
					t.Logf("profile: %v", err)
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				os.WriteFile(file, b, 0o644)
				// Allocations since start, for -sample_index=alloc_objects.
				if resp, err := http.Get("http://" + d.Ops + "/debug/pprof/allocs"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					os.WriteFile(strings.TrimSuffix(file, ".pprof")+"-allocs.pprof", b, 0o644)
				}
			}()
		}
		cpu0 := procCPU(d.cmd.Process.Pid)
		out, err := exec.Command(wrk, "-t2", "-c"+conns, "-d"+dur, "--latency", "-s", script, url).CombinedOutput()
		if err != nil {
			t.Fatalf("wrk %s: %v\n%s", name, err, out)
		}
		cpu := procCPU(d.cmd.Process.Pid) - cpu0
		r := result{name: name}
		fmt.Sscan(match(`Requests/sec:\s+([0-9.]+)`, out), &r.rps)
		var n float64
		fmt.Sscan(match(`(\d+) requests in`, out), &n)
		if n > 0 && strings.HasPrefix(name, "stoad") {
			r.cpu = float64(cpu.Microseconds()) / n
		}
		r.p50 = match(`\n\s+50%\s+(\S+)`, out)
		r.p99 = match(`\n\s+99%\s+(\S+)`, out)
		r.non2xx = match(`Non-2xx or 3xx responses: (\d+)`, out)
		t.Logf("%s:\n%s", name, out)
		return r
	}
	auth := map[string]string{"Authorization": "Bearer " + benchKey}
	// Warm up: the first seconds after a 10,000-tool apply are also its
	// garbage being collected, which would be charged to the first run.
	run("warm-up", mcpURL, "POST", call, auth)
	modern := `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"bench__stock__get_stock","arguments":{"sku":"abc-123"},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}}}`
	runs := []func() result{
		func() result { return run("stoad MCP tools/call (2025-11-25)", mcpURL, "POST", call, auth) },
		func() result {
			return run("stoad plain proxy GET", "http://"+d.Listen+"/bench/stock/items/abc-123", "GET", "", auth)
		},
		func() result { return run("SDK reference server tools/call", refURL, "POST", call, nil) },
		func() result {
			return run("stoad MCP tools/call (2026-07-28)", mcpURL, "POST", modern, map[string]string{
				"Authorization": "Bearer " + benchKey, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "bench__stock__get_stock"})
		},
	}
	// The machine is shared: the runs are interleaved, rounds times, their
	// order rotated every round, and the ratios are taken within a round
	// (then the median), as ../shared/bench/run.sh does.
	rounds := 1
	fmt.Sscan(envOr("STOA_MCP_BENCH_ROUNDS", "1"), &rounds)
	perRound := make([][]result, rounds)
	for r := range rounds {
		perRound[r] = make([]result, len(runs))
		for k := range runs {
			i := (k + r) % len(runs)
			perRound[r][i] = runs[i]()
		}
	}
	median := func(v []float64) float64 {
		sort.Float64s(v)
		if n := len(v); n%2 == 1 {
			return v[n/2]
		} else {
			return (v[n/2-1] + v[n/2]) / 2
		}
	}
	results := make([]result, len(runs))
	for i := range runs {
		var rps []float64
		for r := range rounds {
			rps = append(rps, perRound[r][i].rps)
		}
		// The round whose req/s is the median's stands for the others.
		m := median(append([]float64(nil), rps...))
		results[i] = perRound[0][i]
		for r := range rounds {
			if perRound[r][i].rps >= m {
				results[i] = perRound[r][i]
				break
			}
		}
		results[i].rps = m
	}
	ratio := func(a, b int) float64 {
		var v []float64
		for r := range rounds {
			v = append(v, perRound[r][a].rps/perRound[r][b].rps)
		}
		return median(v)
	}

	// tools/list, first page, tenant with 10,000 tools; sequential.
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var lat []time.Duration
	size := 0
	for i := 0; i < 3000; i++ {
		req, _ := http.NewRequest("POST", mcpURL, strings.NewReader(list))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+largeKey)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if i >= 500 { // warm-up
			lat = append(lat, time.Since(start))
		}
		size = len(b)
		// The first page begins with the platform's own tools.
		if i == 0 && (!strings.Contains(string(b), `"result":{"tools":[{`) || strings.Contains(string(b), `"error":`)) {
			t.Fatalf("tools/list of the large tenant: %.300s", b)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }

	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| run (wrk -t2 -c%s -d%s, loopback) | req/s | p50 | p99 | non-2xx | stoad CPU µs/req |\n|---|---|---|---|---|---|\n", conns, dur)
	for _, r := range results {
		cpu := "-"
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.1f", r.cpu)
		}
		fmt.Fprintf(&sb, "| %s | %.0f | %s | %s | %s | %s |\n", r.name, r.rps, r.p50, r.p99, orZero(r.non2xx), cpu)
	}
	fmt.Fprintf(&sb, "\nmedians of %d interleaved rounds; ratios within each round, then the median\n", rounds)
	fmt.Fprintf(&sb, "MCP/reference = %.2fx (target >= 3), MCP/plain proxy = %.2fx (2026-07-28: %.2fx; target >= 0.85)\n",
		ratio(0, 2), ratio(0, 1), ratio(3, 1))
	// On a shared machine req/s follows the other jobs; stoad's CPU time
	// per request hardly does.
	fmt.Fprintf(&sb, "stoad CPU per request: plain proxy / MCP = %.2fx (legacy), %.2fx (2026-07-28)\n",
		results[1].cpu/results[0].cpu, results[1].cpu/results[3].cpu)
	fmt.Fprintf(&sb, "tools/list first page (%d bytes), tenant with 10,000 tools, sequential: p50 %v, p90 %v, p99 %v (target p50 < 2ms)\n",
		size, p(0.5).Round(time.Microsecond), p(0.9).Round(time.Microsecond), p(0.99).Round(time.Microsecond))
	t.Log(sb.String())
	if out := os.Getenv("STOA_MCP_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(sb.String()), 0o644)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func match(re string, out []byte) string {
	m := regexp.MustCompile(re).FindSubmatch(out)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// writeBenchSpecs writes tenant bench (one tool, no limits) and tenant
// large (100 Tools × 100 operations = 10,000 MCP tools).
func writeBenchSpecs(t *testing.T, dir, up string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: bench}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: bot, namespace: bench}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: stock, namespace: bench}
spec:
  upstream: http://` + up + `/inventory
  auth: {type: apiKey}
  operations:
    - name: get_stock
      method: GET
      path: /items/{sku}
      description: Stock level of one item.
      input:
        type: object
        properties: {sku: {type: string, minLength: 1}}
        required: [sku]
---
apiVersion: stoa.io/v1alpha1
kind: Plan
metadata: {name: unlimited, namespace: bench}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: bot-stock, namespace: bench}
spec: {consumer: bot, plan: unlimited, tool: stock}
---
apiVersion: stoa.io/v1alpha1
kind: Tenant
metadata: {name: large}
spec: {}
---
apiVersion: stoa.io/v1alpha1
kind: Consumer
metadata: {name: bot, namespace: large}
spec: {}
`)
	// A consumer's key sees the tools it is subscribed to: bot is
	// subscribed to all 100 Tools of tenant large.
	b.WriteString("---\napiVersion: stoa.io/v1alpha1\nkind: Plan\nmetadata: {name: unlimited, namespace: large}\nspec: {}\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Subscription\nmetadata: {name: bot-t%02d, namespace: large}\nspec: {consumer: bot, plan: unlimited, tool: t%02d}\n", i, i)
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: t%02d, namespace: large}\nspec:\n  upstream: http://%s/inventory\n  operations:\n", i, up)
		for j := 0; j < 100; j++ {
			fmt.Fprintf(&b, "    - {name: op_%03d, method: GET, path: \"/items/{sku}\", description: Operation %d of tool %d returns the stock level of one item., input: {type: object, properties: {sku: {type: string}}, required: [sku]}}\n", j, j, i)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startRefServer serves bench__stock__get_stock with the official Go SDK
// exactly like pkg/mcp/internal/refserver (stateless, JSON responses,
// net/http), validating arguments with the same JSON Schema library stoa
// uses and calling the same upstream over a keep-alive pool.
func startRefServer(t *testing.T, up string) string {
	t.Helper()
	schema := json.RawMessage(`{"type":"object","properties":{"sku":{"type":"string","minLength":1}},"required":["sku"]}`)
	var doc any
	json.Unmarshal(schema, &doc)
	c := jsonschema.NewCompiler()
	c.AddResource("mem://s.json", doc)
	sch, err := c.Compile("mem://s.json")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	srv := sdk.NewServer(&sdk.Implementation{Name: "refserver", Version: "1"}, nil)
	srv.AddTool(&sdk.Tool{Name: "bench__stock__get_stock", Description: "Stock level of one item.", InputSchema: schema},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			var args any
			if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
				return nil, err
			}
			if err := sch.Validate(args); err != nil {
				return nil, fmt.Errorf("invalid arguments: %v", err)
			}
			sku, _ := args.(map[string]any)["sku"].(string)
			r, _ := http.NewRequestWithContext(ctx, "GET", "http://"+up+"/inventory/items/"+sku, nil)
			resp, err := hc.Do(r)
			if err != nil {
				return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: err.Error()}}}, nil
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(body)}},
				StructuredContent: json.RawMessage(body), IsError: resp.StatusCode >= 300}, nil
		})
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
		&sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String() + "/mcp"
}
