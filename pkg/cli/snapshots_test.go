package cli

import (
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
)

func quotasCases() []cmdCase {
	return []cmdCase{
		{name: "all tenants", args: []string{"-A"}, formats: formats(shapeList), calls: []string{`Quotas("")`},
			out:    []string{"TENANT", "web-shop-tools", "12/1000", "340 (no cap)"},
			errOut: []string{"days reset at 00:00 UTC (next 2026-05-05 00:00:00), months on the 1st"}},
		{name: "one tenant", args: []string{"-n", "acme"}, calls: []string{`Quotas("acme")`}},
		{name: "none", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.QuotaList.Items = nil }, errOut: []string{"no subscriptions"}},
		{name: "unreachable", fail: failAll("Quotas", errUnreachable), code: ExitUnreachable},
		{name: "stray argument", args: []string{"acme"}, code: ExitFailure, flagErr: true},
	}
}

func snapshotsListCases() []cmdCase {
	return []cmdCase{
		{name: "all tenants", args: []string{"-A"}, formats: formats(shapeList),
			out:    []string{"ID", "LAST SEEN", "snp_1", "2026-05-04 12:01:00", "GET /invoices/7", "502", "40ms"},
			errOut: []string{"note: 2 failures were not captured since stoad started"},
			calls:  []string{"Snapshots({Namespace: Tool: Since:0001-01-01 00:00:00 +0000 UTC Limit:100})"}},
		{name: "filters", args: []string{"-n", "acme", "--tool", "billing-api", "--since", "1h", "--limit", "5"},
			calls: []string{"Snapshots({Namespace:acme Tool:billing-api Since:2026-05-04 11:00:00 +0000 UTC Limit:5})"}},
		{name: "none", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.SnapshotList = api.SnapshotList{} }, errOut: []string{"no snapshots"}},
		{name: "forbidden", fail: failAll("Snapshots", errDenied), code: ExitForbidden},
		{name: "bad since", args: []string{"--since", "yesterday"}, code: ExitFailure, flagErr: true,
			errOut: []string{`--since "yesterday": want a duration such as 1h or 7d, or an RFC 3339 time`}},
		{name: "limit not a number", args: []string{"--limit", "all"}, code: ExitFailure, flagErr: true},
	}
}

func snapshotsGetCases() []cmdCase {
	return []cmdCase{
		{name: "get", args: []string{"snp_1"}, formats: formats(shapeObject), calls: []string{`Snapshot("snp_1")`},
			out: []string{"snapshot:    snp_1 (proxy)", "repeats:     3 times", "tool:        acme/billing-api (get_invoice), revision 3",
				"> GET http://127.0.0.1:9001/invoices/7", "> Authorization: [REDACTED]", "< 502 (upstream answer)", "bad gateway", "curl -sS"}},
		{name: "unknown", args: []string{"snp_9"}, code: ExitFailure, errOut: []string{`stoa: snapshot "snp_9" not found`}},
		{name: "unreachable", args: []string{"snp_1"}, fail: failAll("Snapshot", errUnreachable), code: ExitUnreachable},
		{name: "no id", code: ExitFailure, flagErr: true},
	}
}

func snapshotsReplayCases() []cmdCase {
	return []cmdCase{
		{name: "fixed", args: []string{"snp_1"}, formats: formats(shapeObject), calls: []string{`ReplaySnapshot("snp_1")`},
			out: []string{"snp_1  http://127.0.0.1:9001/invoices/7", "before: 502 (5xx) in 40ms", "now:    200 in 8ms", `body:   {"id":7}`}},
		{name: "still broken", args: []string{"snp_1"}, setup: stillBroken, code: ExitFailure,
			out: []string{"now:    503"}, errOut: []string{"warning: body was cut", "stoa: replay of snp_1 failed: the upstream answered 503"}},
		{name: "still broken as json", args: []string{"snp_1", "-o", "json"}, setup: stillBroken, code: ExitFailure, out: []string{`"status": 503`}},
		{name: "no answer", args: []string{"snp_1"}, setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.Replay.Status, fa.Replay.Error = 0, "connection refused"
		}, code: ExitFailure, out: []string{"now:    failed: connection refused"}},
		{name: "forbidden", args: []string{"snp_1"}, fail: failAll("ReplaySnapshot", errForbidden), code: ExitForbidden},
		{name: "no id", code: ExitFailure, flagErr: true},
	}
}

func stillBroken(t *testing.T, fa *clitest.FakeAPI) {
	fa.Replay.Status, fa.Replay.Body, fa.Replay.Warnings = 503, "", []string{"body was cut at 64 KiB: sent as stored"}
}

func webhookDeliveriesCases() []cmdCase {
	return []cmdCase{
		{name: "one webhook", args: []string{"ops", "-A"}, formats: formats(shapeList), out: []string{"ID", "dlv_1", "key.created", "succeeded", "204"},
			calls: []string{"WebhookDeliveries({Namespace: Webhook:ops State: Limit:50})"}},
		{name: "filters", args: []string{"-n", "acme", "--state", "failed", "--limit", "5"},
			calls: []string{"WebhookDeliveries({Namespace:acme Webhook: State:failed Limit:5})"}},
		{name: "none", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.Deliveries.Items = nil }, errOut: []string{"no deliveries"}},
		{name: "unreachable", fail: failAll("WebhookDeliveries", errUnreachable), code: ExitUnreachable},
		{name: "unknown state", args: []string{"--state", "faild"}, code: ExitFailure, flagErr: true, errOut: []string{`did you mean "failed"`}},
		{name: "two names", args: []string{"ops", "audit"}, code: ExitFailure, flagErr: true},
	}
}

func webhookShowCases() []cmdCase {
	return []cmdCase{
		{name: "show", args: []string{"dlv_1"}, formats: formats(shapeObject), calls: []string{`WebhookDelivery("dlv_1")`},
			out: []string{"delivery:  dlv_1", "webhook:   acme/ops", "response:  HTTP 204 in 12ms", "payload:\n{", `"type": "key.created"`}},
		{name: "unknown", args: []string{"dlv_9"}, code: ExitFailure, errOut: []string{`delivery "dlv_9" not found`}},
		{name: "forbidden", args: []string{"dlv_1"}, fail: failAll("WebhookDelivery", errDenied), code: ExitForbidden},
		{name: "no id", code: ExitFailure, flagErr: true},
	}
}

func webhookRedeliverCases() []cmdCase {
	return []cmdCase{
		{name: "delivered", args: []string{"dlv_1"}, formats: formats(shapeObject), out: []string{"dlv_1 delivered to acme/ops: HTTP 204 in 12ms"},
			calls: []string{`Redeliver("dlv_1", false)`}},
		{name: "queued", args: []string{"dlv_1", "--no-wait"}, out: []string{"dlv_1 queued for acme/ops"}, calls: []string{`Redeliver("dlv_1", true)`}},
		{name: "failed", args: []string{"dlv_1"}, setup: failedAttempt, code: ExitFailure,
			out: []string{"error:     refused to connect"}, errOut: []string{"delivery did not succeed (yet); follow it with: stoa webhooks deliveries ops -n acme"}},
		{name: "failed as json", args: []string{"dlv_1", "-o", "json"}, setup: failedAttempt, code: ExitFailure, out: []string{`"state": "failed"`}},
		{name: "unreachable", args: []string{"dlv_1"}, fail: failAll("Redeliver", errUnreachable), code: ExitUnreachable},
		{name: "no id", code: ExitFailure, flagErr: true},
	}
}

func failedAttempt(t *testing.T, fa *clitest.FakeAPI) {
	fa.Attempt.Delivery.State, fa.Attempt.Delivery.LastStatus, fa.Attempt.Delivery.LastError = "failed", 0, "refused to connect"
}

func webhookTestCases() []cmdCase {
	return []cmdCase{
		{name: "delivered", args: []string{"ops", "-n", "acme"}, formats: formats(shapeObject), out: []string{"delivered to acme/ops"},
			calls: []string{"TestWebhook({Tenant:acme Name:ops NoWait:false})"}},
		{name: "queued", args: []string{"ops", "-n", "acme", "--no-wait"}, out: []string{"queued"}, calls: []string{"TestWebhook({Tenant:acme Name:ops NoWait:true})"}},
		{name: "failed", args: []string{"ops", "-n", "acme"}, setup: failedAttempt, code: ExitFailure},
		{name: "unknown webhook", args: []string{"nope", "-n", "acme"}, code: ExitFailure,
			fail: failAll("TestWebhook", &api.Error{Code: api.CodeNotFound, Message: `webhook "nope" not found in tenant acme`})},
		{name: "forbidden", args: []string{"ops", "-n", "acme"}, fail: failAll("TestWebhook", errForbidden), code: ExitForbidden},
		{name: "no tenant", args: []string{"ops"}, code: ExitFailure, flagErr: true, errOut: []string{"-n TENANT is required"}},
		{name: "no name", args: []string{"-n", "acme"}, code: ExitFailure, flagErr: true},
	}
}
