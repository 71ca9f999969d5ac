package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"1h", now.Add(-time.Hour), false},
		{"7d", now.AddDate(0, 0, -7), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"2026-05-01T00:00:00Z", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
		{"-1h", time.Time{}, true},
	} {
		got, err := parseSince(tc.in, now)
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestReportAttemptExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resp   api.WebhookAttemptResponse
		noWait bool
		output string
		fail   bool
		want   string
	}{
		{"delivered", api.WebhookAttemptResponse{Waited: true, Delivery: api.WebhookDelivery{ID: "dlv_1", Tenant: "acme", Webhook: "ops", State: "succeeded", LastStatus: 204}}, false, "", false, "dlv_1 delivered to acme/ops: HTTP 204"},
		{"refused", api.WebhookAttemptResponse{Waited: true, Delivery: api.WebhookDelivery{ID: "dlv_2", State: "failed", Attempts: 1, LastError: "refused to connect"}}, false, "", true, "refused to connect"},
		{"queued", api.WebhookAttemptResponse{Delivery: api.WebhookDelivery{ID: "dlv_3", State: "pending"}}, true, "", false, "dlv_3 queued"},
		{"json failure", api.WebhookAttemptResponse{Waited: true, Delivery: api.WebhookDelivery{ID: "dlv_4", State: "pending", Attempts: 1}}, false, "json", true, `"id": "dlv_4"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			f := &Factory{IO: &IOStreams{Out: &out, ErrOut: &errb}, Output: tc.output}
			err := reportAttempt(f, &tc.resp, tc.noWait)
			if (err != nil) != tc.fail || (err != nil && exitCode(err) != ExitFailure) {
				t.Fatalf("error %v, want failure %v", err, tc.fail)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("output %q lacks %q", out.String(), tc.want)
			}
		})
	}
}

func TestPrintSnapshot(t *testing.T) {
	s := &api.Snapshot{ID: "snp_1", Source: "proxy", Tenant: "acme", Tool: "api", Reason: "5xx", UpstreamStatus: 500,
		Request:    api.SnapshotMessage{Method: "POST", URL: "http://u/x", Headers: []api.SnapshotHeader{{Name: "Cookie", Value: "[REDACTED]", Redacted: true}}, Body: "{}", BodyBytes: 9000, Truncated: true},
		Response:   api.SnapshotMessage{Status: 500, Omitted: "binary body not kept", BodyBytes: 12},
		Redactions: []string{"header Cookie"}, Curl: "curl -sS -X 'POST' 'http://u/x'\n"}
	var b bytes.Buffer
	printSnapshot(&b, s)
	for _, want := range []string{"> POST http://u/x", "> Cookie: [REDACTED]", "[body cut: 2 of 9000 bytes kept]",
		"< 500 (upstream answer)", "[12 bytes: binary body not kept]", "redacted: header Cookie", "curl -sS"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func auditCases() []cmdCase {
	return []cmdCase{
		{name: "all", formats: formats(shapeList), out: []string{"SEQ", "alice", "key.create", "key k3v7q2m4x5c6b7n2", "acme"},
			calls: []string{"Audit({Since:0001-01-01 00:00:00 +0000 UTC Actor: Action: Namespace: Limit:0})"}},
		{name: "filters", args: []string{"--since", "24h", "--actor", "bob", "--action", "key.*", "-n", "acme", "--limit", "10"},
			calls: []string{"Audit({Since:2026-05-03 12:00:00 +0000 UTC Actor:bob Action:key.* Namespace:acme Limit:10})"}},
		{name: "since a time", args: []string{"--since", "2026-05-01T00:00:00Z"},
			calls: []string{"Audit({Since:2026-05-01 00:00:00 +0000 UTC Actor: Action: Namespace: Limit:0})"}},
		{name: "none", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.AuditLog = nil }, errOut: []string{"no audit entries match"}},
		{name: "forbidden", fail: failAll("Audit", errDenied), code: ExitForbidden},
		{name: "unreachable as ndjson", args: []string{"-o", "ndjson"}, fail: failAll("Audit", errUnreachable), code: ExitUnreachable},
		{name: "bad since", args: []string{"--since", "last week"}, code: ExitFailure, flagErr: true, errOut: []string{`--since "last week"`}},
		{name: "unknown subcommand", args: []string{"verfy"}, code: ExitFailure, flagErr: true, errOut: []string{`did you mean "verify"`}},
	}
}

func auditVerifyCases() []cmdCase {
	return []cmdCase{
		{name: "intact", formats: formats(shapeObject), calls: []string{"AuditVerify()"},
			out: []string{"audit chain intact: 2 entries, head sha256:abababab"}},
		{name: "empty", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.Verify = api.AuditVerify{OK: true} },
			out: []string{"0 entries, head sha256:0000000000000000000000000000000000000000000000000000000000000000"}},
		{name: "broken", setup: brokenChain, code: ExitFailure,
			errOut: []string{"audit chain BROKEN at entry 7: hash mismatch", "entries before 7 verify"}},
		{name: "broken as json", args: []string{"-o", "json"}, setup: brokenChain, code: ExitFailure, out: []string{`"brokenAt": 7`}},
		{name: "unreachable", fail: failAll("AuditVerify", errUnreachable), code: ExitUnreachable},
		{name: "stray argument", args: []string{"now"}, code: ExitFailure, flagErr: true},
	}
}

func brokenChain(t *testing.T, fa *clitest.FakeAPI) {
	fa.Verify = api.AuditVerify{Entries: 9, BrokenAt: 7, Problem: "hash mismatch"}
}
