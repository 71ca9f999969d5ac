package cli

import (
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
)

func joinTokenCreateCases() []cmdCase {
	return []cmdCase{
		{name: "scoped", args: []string{"--name", "edge-9", "--ttl", "30m"}, formats: formats(shapeObject),
			out:    []string{"stoajoin_QQQQ"},
			errOut: []string{"join token 9f86d081884c for data plane edge-9, until 2026-05-04 12:30:00; it is not shown again"},
			calls:  []string{"CreateJoinToken({Name:edge-9 TTL:30m0s})"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if strings.Count(strings.TrimSpace(r.out), "\n") != 0 {
					t.Errorf("stdout is the token alone, for $(…): %q", r.out)
				}
			}},
		{name: "any name, default ttl", errOut: []string{"for any data plane name"}, calls: []string{"CreateJoinToken({Name: TTL:1h0m0s})"}},
		{name: "ttl out of range", args: []string{"--ttl", "200h"}, code: ExitFailure, flagErr: true, errOut: []string{"--ttl 200h0m0s is out of range"}},
		{name: "not a duration", args: []string{"--ttl", "soon"}, code: ExitFailure, flagErr: true},
		{name: "standalone", fail: failAll("CreateJoinToken", &api.Error{Code: api.CodeConflict, Message: "this stoad has no fleet", Hint: "start the control plane with --bundle-signing-key"}),
			code: ExitFailure, errOut: []string{"this stoad has no fleet", "--bundle-signing-key"}},
		{name: "not cluster admin", fail: failAll("CreateJoinToken", &api.Error{Code: api.CodeForbidden, Message: "cluster admin required to manage join tokens"}),
			code: ExitForbidden, errOut: []string{"cluster admin required to manage join tokens"}},
		{name: "stray argument", args: []string{"edge-9"}, code: ExitFailure, flagErr: true},
	}
}

func joinTokenListCases() []cmdCase {
	return []cmdCase{
		{name: "tokens", formats: formats(shapeList),
			out:   []string{"ID             NAME     STATE", "5bc1dc0e9a3f   edge-3   active", "77aa01bb42cd   -        used", "edge-2"},
			calls: []string{"JoinTokens()"}},
		{name: "as json", args: []string{"-o", "json"}, out: []string{`"kind": "JoinTokenList"`}, notOut: []string{"stoajoin_"}},
		{name: "none", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.JoinTokenList.Items = nil },
			errOut: []string{"no join tokens; make one with: stoa fleet join-token create --name NAME"}},
		{name: "unreachable", fail: failAll("JoinTokens", errUnreachable), code: ExitUnreachable},
		{name: "stray argument", args: []string{"edge-3"}, code: ExitFailure, flagErr: true},
	}
}

func joinTokenRevokeCases() []cmdCase {
	return []cmdCase{
		{name: "revoke", args: []string{"5bc1dc"}, formats: formats(shapeObject), out: []string{"join token 5bc1dc revoked"},
			calls: []string{`RevokeJoinToken("5bc1dc")`}},
		{name: "unknown", args: []string{"abcdef"}, code: ExitFailure, errOut: []string{"no token abcdef", "stoa fleet join-token list"}},
		{name: "forbidden", args: []string{"5bc1dc"}, fail: failAll("RevokeJoinToken", errDenied), code: ExitForbidden},
		{name: "no id", code: ExitFailure, flagErr: true},
	}
}

func dataPlaneRevokeCases() []cmdCase {
	return []cmdCase{
		{name: "revoke", args: []string{"edge-2"}, formats: formats(shapeObject), out: []string{"data plane edge-2 revoked"},
			errOut: []string{"stoa fleet join-token create --name edge-2"}, calls: []string{`RevokeDataPlane("edge-2")`},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if fa.DataPlaneList.Items[1].Health != "revoked" {
					t.Errorf("edge-2 not revoked: %+v", fa.DataPlaneList.Items[1])
				}
			}},
		{name: "unknown", args: []string{"edge-9"}, code: ExitFailure, errOut: []string{`no data plane "edge-9"`, "stoa get dataplanes"}},
		{name: "not cluster admin", args: []string{"edge-1"}, fail: failAll("RevokeDataPlane", errDenied), code: ExitForbidden},
		{name: "no name", code: ExitFailure, flagErr: true},
	}
}
