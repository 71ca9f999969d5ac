package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/devidp/devidptest"
)

const testAudience = "https://control-plane.test"

// startIdP serves a development issuer with a user, the CLI's public
// client and a CI client.
func startIdP(t *testing.T) *devidptest.Server {
	t.Helper()
	return devidptest.Start(t, devidp.Config{
		Audience: testAudience,
		Users: []devidp.User{
			{Username: "alice", Password: "alice-pw", Groups: []string{"stoa:admin"}},
			{Username: "vera", Password: "vera-pw", Groups: []string{"acme:viewer"}},
		},
		Clients: []devidp.Client{
			{ID: devidp.DefaultClientID},
			{ID: "ci", Secret: "ci-secret", Groups: []string{"stoa:admin"}},
		},
		DevicePollInterval: time.Second,
	})
}

// withIdP starts an issuer and a configuration whose current context
// "ci" logs in to it as the CI client, pinning its certificate; $IDP is
// the issuer's URL. Extra is appended to the configuration, {{IDP}} in it
// replaced by that URL.
func withIdP(pin bool, extra string) func(t *testing.T) map[string]string {
	return func(t *testing.T) map[string]string {
		s := startIdP(t)
		ctx := fmt.Sprintf("  - name: ci\n    server: https://cp.example.com:7443\n    issuer: %s\n    clientID: ci\n", s.URL)
		if pin {
			ctx += "    issuerFingerprint: " + s.Fingerprint.String() + "\n"
		}
		vars := withConfig("current-context: ci\ncontexts:\n" + ctx + strings.ReplaceAll(extra, "{{IDP}}", s.URL))(t)
		vars["$IDP"] = s.URL
		vars["$IDPPIN"] = s.Fingerprint.String()
		return vars
	}
}

func loginCases() []cmdCase {
	return []cmdCase{
		// The expiry shown depends on when the issuer answered: not in
		// the golden file.
		{name: "client credentials", vars: withIdP(true, ""), env: map[string]string{"STOA_CLIENT_SECRET": "ci-secret"},
			args: []string{"--client-credentials"}, noGolden: true,
			errOut: []string{"token stored in $CFG/stoa/tokens/ci.json (mode 0600)",
				`logged in to context "ci" (https://cp.example.com:7443) as ci; the token expires`, "renewed while $STOA_CLIENT_SECRET is set"},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				fi, err := os.Stat(tokenFile("ci"))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("token file: %v, mode %v; want 0600", err, fi.Mode())
				}
				st := fileTokens(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "stoa"))
				tok, _, err := st.Load("ci")
				if err != nil || tok.ClientID != "ci" || tok.RefreshToken != "" {
					t.Fatalf("stored %+v, %v", tok, err)
				}
				data, _ := os.ReadFile(tokenFile("ci"))
				if string(data) == "" || strings.Contains(string(data), "ci-secret") {
					t.Errorf("the client secret must never be stored")
				}
			}},
		{name: "secret from a file", args: []string{"--client-credentials", "--client-secret-file", "$SECRET"}, noGolden: true,
			vars: func(t *testing.T) map[string]string {
				vars := withIdP(true, "")(t)
				vars["$SECRET"] = filepath.Join(t.TempDir(), "secret")
				writeFile(t, vars["$SECRET"], "ci-secret\n")
				return vars
			},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				if _, err := os.Stat(tokenFile("ci")); err != nil {
					t.Error(err)
				}
			}},
		{name: "wrong secret", vars: withIdP(true, ""), env: map[string]string{"STOA_CLIENT_SECRET": "guess"}, args: []string{"--client-credentials"},
			code: ExitForbidden, errOut: []string{"the issuer refused", "invalid_client"}},
		{name: "no secret and no terminal", vars: withIdP(true, ""), args: []string{"--client-credentials"}, code: ExitFailure, flagErr: true,
			errOut: []string{"--client-credentials needs the client secret", "hint: set STOA_CLIENT_SECRET or pass --client-secret-file PATH"}},
		{name: "untrusted issuer certificate", vars: withIdP(false, ""), env: map[string]string{"STOA_CLIENT_SECRET": "ci-secret"},
			args: []string{"--client-credentials"}, code: ExitUnreachable, errOut: []string{"certificate signed by unknown authority", "hint: the issuer presented $IDPPIN",
				"pin it: stoa context add ci --server https://cp.example.com:7443 --issuer $IDP --client-id ci --issuer-fingerprint $IDPPIN --overwrite"}},
		{name: "issuer certificate replaced", vars: withIdP(false, "  - name: pinned\n    server: https://cp.example.com:7443\n    issuer: {{IDP}}\n    clientID: ci\n    issuerFingerprint: "+devPin+"\n"), env: map[string]string{"STOA_CLIENT_SECRET": "ci-secret"},
			args: []string{"--client-credentials", "--context", "pinned"}, code: ExitUnreachable,
			errOut: []string{"does not match the pinned fingerprint", "nothing was sent"}},
		{name: "issuer unreachable", vars: withConfig("contexts:\n  - name: x\n    server: https://cp.example.com\n    issuer: https://127.0.0.1:1\n"),
			args: []string{"--context", "x", "--device"}, code: ExitUnreachable, errOut: []string{"discover issuer https://127.0.0.1:1", "connection refused", "hint: is the issuer"}},
		{name: "no issuer", vars: withConfig("contexts:\n  - name: x\n    server: https://cp.example.com\n"), args: []string{"--context", "x"},
			code: ExitFailure, flagErr: true, errOut: []string{`context "x" has no issuer`, "--issuer URL --overwrite"}},
		{name: "local context", vars: withConfig(""), code: ExitFailure, flagErr: true, errOut: []string{"nothing to log in to"}},
		{name: "two flows", vars: withIdP(true, ""), args: []string{"--device", "--client-credentials"}, code: ExitFailure, flagErr: true,
			errOut: []string{"if any flags in the group [device client-credentials] are set none of the others can be"}},
		{name: "secret file without client credentials", vars: withIdP(true, ""), args: []string{"--client-secret-file", "/dev/null"}, code: ExitFailure, flagErr: true,
			errOut: []string{"--client-secret-file goes with --client-credentials"}},
		{name: "-o refused", vars: withIdP(true, ""), args: []string{"-o", "json"}, code: ExitFailure, flagErr: true, errOut: []string{"prints no data"}},
	}
}
