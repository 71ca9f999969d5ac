package cli

import (
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
)

func keysCreateCases() []cmdCase {
	return []cmdCase{
		{name: "create", args: []string{"--consumer", "web-shop", "-n", "acme", "--name", "ci", "--expires", "90d"}, formats: formats(shapeObject),
			out:    []string{"stoa_sk_n3wk3yn3wk3yn3wk_secret\n"},
			errOut: []string{"created key stoa_sk_n3wk3yn3wk3yn3wk for consumer web-shop in tenant acme; this is the only time it is shown"},
			calls:  []string{"CreateKey({Tenant:acme Consumer:web-shop Name:ci ExpiresIn:90d})"}},
		{name: "unknown consumer", args: []string{"--consumer", "nobody", "-n", "acme"}, code: ExitFailure,
			fail:   failAll("CreateKey", &api.Error{Code: api.CodeNotFound, Message: `consumer "nobody" not found in tenant acme`, Hint: "create it with: stoa apply -f"}),
			errOut: []string{`stoa: consumer "nobody" not found in tenant acme`, "hint: create it with"}},
		{name: "bad lifetime", args: []string{"--consumer", "web-shop", "-n", "acme", "--expires", "soon"}, code: ExitInvalid,
			fail: failAll("CreateKey", &api.Error{Code: api.CodeInvalid, Message: `expires "soon": want a duration`})},
		{name: "unreachable", args: []string{"--consumer", "web-shop", "-n", "acme"}, fail: failAll("CreateKey", errUnreachable), code: ExitUnreachable},
		{name: "no consumer", args: []string{"-n", "acme"}, code: ExitFailure, flagErr: true, errOut: []string{"--consumer and -n TENANT are required"}},
		{name: "no tenant", args: []string{"--consumer", "web-shop"}, code: ExitFailure, flagErr: true, errOut: []string{"--consumer and -n TENANT are required"}},
		{name: "stray argument", args: []string{"web-shop"}, code: ExitFailure, flagErr: true},
	}
}

func keysListCases() []cmdCase {
	return []cmdCase{
		{name: "all tenants", args: []string{"-A"}, formats: formats(shapeList), calls: []string{"Keys({Namespace: Consumer:})"},
			out: []string{"ID", "LAST USED", "k3v7q2m4x5c6b7n2", "2026-08-02 12:00:00", "revoked", "consumer deleted (by alice)"}},
		{name: "one consumer", args: []string{"-n", "acme", "--consumer", "web-shop"}, calls: []string{"Keys({Namespace:acme Consumer:web-shop})"},
			notOut: []string{"globex"}},
		{name: "-A wins over the environment", args: []string{"-A"}, env: map[string]string{"STOA_NAMESPACE": "acme"}, calls: []string{"Keys({Namespace: Consumer:})"}},
		{name: "none", args: []string{"-n", "initech"}, errOut: []string{"no keys; create one with: stoa keys create --consumer NAME -n TENANT"}},
		{name: "forbidden", fail: failAll("Keys", errDenied), code: ExitForbidden},
		{name: "stray argument", args: []string{"acme"}, code: ExitFailure, flagErr: true},
	}
}

func keysRevokeCases() []cmdCase {
	return []cmdCase{
		{name: "revoke", args: []string{"k3v7q2m4x5c6b7n2"}, formats: formats(shapeObject), out: []string{"key stoa_sk_k3v7q2m4x5c6b7n2 revoked"},
			calls: []string{`RevokeKey("k3v7q2m4x5c6b7n2")`}},
		{name: "unknown key", args: []string{"nope"}, code: ExitFailure, errOut: []string{`stoa: key "nope" not found`}},
		{name: "unreachable", args: []string{"k3v7q2m4x5c6b7n2"}, fail: failAll("RevokeKey", errUnreachable), code: ExitUnreachable},
		{name: "no id", code: ExitFailure, flagErr: true, errOut: []string{"accepts 1 arg(s), received 0"}},
	}
}

func keysRotateCases() []cmdCase {
	return []cmdCase{
		{name: "rotate", args: []string{"k3v7q2m4x5c6b7n2", "--grace", "24h"}, formats: formats(shapeObject),
			out:    []string{"stoa_sk_n3wn3wn3wn3wn3wn_secret\n"},
			errOut: []string{"new key stoa_sk_n3wn3wn3wn3wn3wn (shown once, expires 2026-08-02 12:00:00); old key stoa_sk_k3v7q2m4x5c6b7n2 works until 2026-05-05 12:00:00"},
			calls:  []string{`RotateKey("k3v7q2m4x5c6b7n2", {Grace:24h ExpiresIn:})`}},
		{name: "no expiry", args: []string{"k3v7q2m4x5c6b7n2", "--expires", "never"}, setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.KeyList.Items[0].ExpiresAt = time.Time{}
		}, errOut: []string{"(shown once, no expiry)"}, calls: []string{`RotateKey("k3v7q2m4x5c6b7n2", {Grace: ExpiresIn:never})`}},
		{name: "revoked key", args: []string{"r3v0k3d0000000aa"}, code: ExitFailure,
			fail: failAll("RotateKey", &api.Error{Code: api.CodeConflict, Message: "key r3v0k3d0000000aa is revoked: only active keys rotate"})},
		{name: "forbidden", args: []string{"k3v7q2m4x5c6b7n2"}, fail: failAll("RotateKey", errForbidden), code: ExitForbidden},
		{name: "no id", args: []string{"--grace", "1h"}, code: ExitFailure, flagErr: true},
	}
}
