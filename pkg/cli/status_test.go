package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/version"
)

func statusCases() []cmdCase {
	return []cmdCase{
		{name: "running", formats: formats(shapeObject), calls: []string{"Status()"},
			out: []string{"stoad:       v0.0.0-test (abc123), pid 42, up 1h0m0s", "revision:    3", "objects:     2 Tenant, 3 Tool", "proxy      127.0.0.1:8080",
				"routes:      3"}, notOut: []string{"address:"}},
		{name: "gitops apply failed", setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.StatusAnswer.SpecsDir = "/etc/stoa/specs"
			fa.StatusAnswer.GitOps = &api.GitOpsStatus{Dir: "/etc/stoa/specs", LastAppliedAt: clitest.T0, LastRevision: 2,
				LastErrorAt: clitest.T0.Add(60e9), LastError: "tool.yaml:3:1: unknown field\n  upstrem: x"}
		}, out: []string{"gitops:", "last applied 2026-05-04 12:00:00 (revision 2)", "LAST APPLY FAILED 2026-05-04 12:01:00: tool.yaml:3:1: unknown field", "    upstrem: x"}},
		{name: "data plane", formats: formats(shapeObject), setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.StatusAnswer.Fleet = &fleet.SyncStatus{ControlPlane: "https://cp.example:8443", Name: "edge-1", State: fleet.StatePartitioned, Since: clitest.T0,
				Revision: 41, Digest: "sha256:4f2a", Origin: "disk", ControlPlaneRevision: 42, Lag: 1, LastSync: clitest.T0, LastContact: clitest.T0.Add(-60e9),
				LastRefusal: &fleet.Refusal{Reason: "signature", Revision: 43, Message: "bundle signature does not verify", Hint: "sign with the pinned key", At: clitest.T0},
				Hint:        "serving revision 41 (from disk) until the control plane is reachable; it catches up by itself"}
		}, out: []string{"source:      control plane https://cp.example:8443 as data plane edge-1", "state        partitioned since 2026-05-04 12:00:00",
			"serving      revision 41 (sha256:4f2a) from disk", "lag          1 (control plane at revision 42)", "last contact 2026-05-04 11:59:00",
			"LAST REFUSAL 2026-05-04 12:00:00 (revision 43, signature): bundle signature does not verify", "hint: sign with the pinned key",
			"hint         serving revision 41 (from disk)"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if !strings.HasPrefix(strings.TrimSpace(r.out), "{") {
					return // the table
				}
				var out struct {
					Fleet *fleet.SyncStatus `json:"fleet"`
				}
				if err := json.Unmarshal([]byte(r.out), &out); err != nil || out.Fleet == nil || out.Fleet.ControlPlane != "https://cp.example:8443" ||
					out.Fleet.Lag != 1 || out.Fleet.Origin != "disk" || out.Fleet.LastRefusal == nil || out.Fleet.LastRefusal.Reason != "signature" {
					t.Errorf("status -o json of a data plane: %v\n%s", err, r.out)
				}
			}},
		{name: "data plane as yaml", args: []string{"-o", "yaml"}, setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.StatusAnswer.Fleet = &fleet.SyncStatus{ControlPlane: "https://cp.example:8443", State: fleet.StateConnected, Revision: 42, Origin: "control-plane"}
		}, out: []string{"fleet:", "controlPlane: https://cp.example:8443", "state: connected", "origin: control-plane", "lag: 0"}},
		{name: "bundle file", setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.StatusAnswer.Bundle = &api.BundleStatus{File: "/etc/stoa/bundle.json", Signature: "/etc/stoa/bundle.json.sig", Revision: 7, Digest: "sha256:99",
				Origin: "file", LastLoad: clitest.T0, LastError: "read bundle: open /etc/stoa/bundle.json.sig: no such file or directory"}
		}, out: []string{"source:      bundle file /etc/stoa/bundle.json (signature /etc/stoa/bundle.json.sig)", "serving      revision 7 (sha256:99) from file",
			"last load    2026-05-04 12:00:00", "last check   never", "LAST ERROR   read bundle: open /etc/stoa/bundle.json.sig"}},
		{name: "standalone has no source", notOut: []string{"source:"}},
		{name: "control plane as a tenant role", setup: func(t *testing.T, fa *clitest.FakeAPI) {
			// What a token without cluster admin is shown: no pid, paths,
			// listeners or components; the development issuer labelled.
			fa.StatusAnswer = api.Status{Role: "control-plane", Version: "v0.0.0-test", Uptime: "1h0m0s", Revision: 3,
				Objects:  map[string]int{"Tool": 1},
				Warnings: []string{"DEVELOPMENT ISSUER at https://127.0.0.1:8443/dev-idp mints cluster-admin tokens: not for production (--dev-issuer)"}}
		}, out: []string{"WARNING:   DEVELOPMENT ISSUER at https://127.0.0.1:8443/dev-idp", "role:      control-plane",
			"stoad:     v0.0.0-test, up 1h0m0s"}, notOut: []string{"pid", "state:"}},
		{name: "no objects", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.LiveObjects = nil },
			out: []string{"none (apply specs with: stoa apply -f DIR)"}},
		{name: "not running", fail: failAll("Status", errUnreachable), code: ExitUnreachable,
			errOut: []string{"stoa: cannot reach stoad at /run/stoa/fake.sock: connection refused", "hint: is stoad running? start it with: stoad --socket /run/stoa/fake.sock"}},
		{name: "peer refused", fail: failAll("Status", errDenied), code: ExitForbidden, errOut: []string{"uid 1234 may not use this stoad"}},
		{name: "shutting down", fail: failAll("Status", errShutdown), code: ExitUnreachable},
		{name: "stray argument", args: []string{"now"}, code: ExitFailure, flagErr: true, errOut: []string{`unknown command "now" for "stoa status"`}},
		{name: "bad output", args: []string{"-o", "xml"}, code: ExitFailure, flagErr: true, errOut: []string{`"xml" is not one of table, wide, yaml, json, ndjson`}},
	}
}

func versionCases() []cmdCase {
	return []cmdCase{
		{name: "both", formats: formats(shapeObject), out: []string{version.String("stoa"), "stoad v0.0.0-test (abc123)"}, calls: []string{"Status()"}},
		{name: "json", args: []string{"-o", "json"}, check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
			var v Versions
			if err := json.Unmarshal([]byte(r.out), &v); err != nil || v.Client.Version != version.Version || v.Server == nil || v.Server.Version != "v0.0.0-test" {
				t.Errorf("version -o json: %v\n%s", err, r.out)
			}
		}},
		// An unreachable stoad is reported, not an error: the CLI's own
		// version is still the answer.
		{name: "stoad not running", fail: failAll("Status", errUnreachable), out: []string{version.String("stoa")}, notOut: []string{"stoad "},
			errOut: []string{"stoad: not reachable (cannot reach stoad at /run/stoa/fake.sock: connection refused)"}},
		{name: "stoad not running as json", args: []string{"-o", "json"}, fail: failAll("Status", errUnreachable), notOut: []string{`"server"`},
			errOut: []string{"stoad: not reachable"}},
		{name: "stray argument", args: []string{"2"}, code: ExitFailure, flagErr: true},
		{name: "unknown flag", args: []string{"--short"}, code: ExitFailure, flagErr: true, errOut: []string{"unknown flag: --short"}},
	}
}

func eventsCases() []cmdCase {
	return []cmdCase{
		{name: "last", args: []string{"--last", "3"}, formats: formats(shapeList), out: []string{"config.applied", "[acme] key created"},
			calls: []string{"Events({Since:0 Last:3 Follow:false})"}},
		{name: "default backlog", calls: []string{"Events({Since:0 Last:20 Follow:false})"}, out: []string{"revision 3"}},
		{name: "since wins over last", args: []string{"--since", "2"}, calls: []string{"Events({Since:2 Last:0 Follow:false})"},
			out: []string{"revision 3"}, notOut: []string{"key created"}},
		{name: "type prefix", args: []string{"--type", "key."}, out: []string{"key created"}, notOut: []string{"config.applied"}},
		{name: "follow as ndjson", args: []string{"-f", "-o", "json"}, calls: []string{"Events({Since:0 Last:20 Follow:true})"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				lines := strings.Split(strings.TrimSpace(r.out), "\n")
				if len(lines) != 3 {
					t.Fatalf("want 3 lines:\n%s", r.out)
				}
				for _, l := range lines {
					if !json.Valid([]byte(l)) {
						t.Errorf("not one JSON value: %q", l)
					}
				}
			}},
		{name: "follow as yaml", args: []string{"--follow", "-o", "yaml"}, check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
			if strings.Count(r.out, "---\n") != 2 {
				t.Errorf("want 3 YAML documents:\n%s", r.out)
			}
		}},
		{name: "unreachable", fail: failAll("Events", errUnreachable), code: ExitUnreachable, errOut: []string{"hint: is stoad running?"}},
		{name: "forbidden", args: []string{"-f"}, fail: failAll("Events", errForbidden), code: ExitForbidden},
		{name: "last not a number", args: []string{"--last", "x"}, code: ExitFailure, flagErr: true, errOut: []string{`invalid argument "x" for "--last"`}},
		{name: "stray argument", args: []string{"config"}, code: ExitFailure, flagErr: true},
	}
}

func topCases() []cmdCase {
	return []cmdCase{
		{name: "one sample", formats: formats(shapeObject), calls: []string{"Stats()"},
			out: []string{"stoad v0.0.0-test, up 1h0m, revision 3: 20.0 req/s, p50 3.2ms, p99 41.0ms", "acme", "billing-api", "MCP TOOL", "acme__billing-api__get_invoice"}},
		{name: "no tools", setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.StatsStream = []api.StatsSample{{Time: clitest.T0, IntervalSeconds: 1, Daemon: api.DaemonInfo{Version: "v0.0.0-test"}}}
		}, out: []string{"(no tools; apply specs with: stoa apply -f DIR)"}},
		{name: "xdp counters", setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.StatsStream[2].XDP = &api.XDPStats{Mode: "native", Passed: 100, DroppedRate: 5,
				TopSources: []api.XDPSource{{Addr: "198.51.100.7", Dropped: 5}}}
		}, out: []string{"top: 198.51.100.7 (5 dropped)"}},
		{name: "follow", args: []string{"--follow"}, calls: []string{"FollowStats()"}, check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
			// The first sample has no rates yet: two of three are shown.
			if n := strings.Count(r.out, "TENANT  TOOL"); n != 2 {
				t.Errorf("want 2 tables, got %d:\n%s", n, r.out)
			}
		}},
		{name: "follow as ndjson", args: []string{"-f", "-o", "json"}, check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
			lines := strings.Split(strings.TrimSpace(r.out), "\n")
			if len(lines) != 2 || !json.Valid([]byte(lines[0])) || !json.Valid([]byte(lines[1])) {
				t.Errorf("want 2 JSON lines:\n%s", r.out)
			}
		}},
		{name: "unreachable", fail: failAll("Stats", errUnreachable), code: ExitUnreachable},
		{name: "follow refused", args: []string{"-f"}, fail: failAll("FollowStats", errDenied), code: ExitForbidden},
		{name: "stray argument", args: []string{"acme"}, code: ExitFailure, flagErr: true},
		{name: "follow takes no value", args: []string{"--follow=often"}, code: ExitFailure, flagErr: true, errOut: []string{"invalid argument"}},
	}
}

func dashboardCases() []cmdCase {
	return []cmdCase{
		// q quits; a terminal is all it needs.
		{name: "quits on q", tty: true, stdin: "q", noGolden: true},
		// stoad's errors are shown in the dashboard, which keeps
		// retrying: they never end it.
		{name: "stoad unreachable", tty: true, stdin: "q", noGolden: true,
			fail: map[string]error{"FollowStats": errUnreachable, "Events": errUnreachable}},
		{name: "no terminal", code: ExitFailure, flagErr: true,
			errOut: []string{"stoa dashboard needs a terminal", "hint: for scripts and pipes use: stoa top -o json"}},
		{name: "-o refused", args: []string{"-o", "json"}, tty: true, code: ExitFailure, flagErr: true, errOut: []string{"prints no data"}},
		{name: "stray argument", args: []string{"acme"}, tty: true, code: ExitFailure, flagErr: true},
	}
}
