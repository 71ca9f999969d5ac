package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/devidp/devidptest"
)

// acmeSpecs is a tenant with a consumer and a tool.
func acmeSpecs(upstream string) string {
	return doc("Tenant", "", "acme", "displayName: Acme") +
		doc("Consumer", "acme", "shop", "") +
		doc("Tool", "acme", "billing", "protocol: rest\nupstream: "+upstream+"\nauth: {type: apiKey}")
}

// TestControlPlaneDevIssuer: stoad --role control-plane --dev-issuer on
// PostgreSQL, and the real stoa logging in to it the way its banner
// says (following the printed URL, as a person would, with the printed
// password), then working through the remote context like on the
// socket; a CI login with client credentials; and what a request without
// a token, with a foreign one, or over plain http gets.
func TestControlPlaneDevIssuer(t *testing.T) {
	cp := newControlPlane(t, pgDatabase(t), "--dev-issuer")
	cp.Start()
	if cp.Issuer == "" || !strings.Contains(cp.Log(), "DEVELOPMENT ISSUER at "+cp.Issuer+" — NOT FOR PRODUCTION") ||
		!strings.Contains(cp.Log(), "stoa context add dev --server "+cp.API) {
		t.Fatalf("banner:\n%s", cp.Log())
	}
	u := newCLIUser(t)
	u.addContext("dev", cp)

	// The browser flow: the CLI prints the loopback URL (no display);
	// the user opens it and signs in with the printed password.
	browser := devidptest.Remote(cp.Issuer, cp.Client()).NewBrowser("dev", cp.DevPassword)
	done := make(chan error, 1)
	le := &loginEnv{t: t}
	r := le.interactive(u.env(), func(line string) {
		if m := urlRE.FindString(line); strings.HasPrefix(m, "http://127.0.0.1:") {
			go func() {
				page, err := browser.Login(m)
				if err == nil && !strings.Contains(page.Body, "Logged in") {
					err = fmt.Errorf("landed on %s: %.300s", page.URL, page.Body)
				}
				done <- err
			}()
		}
	}, "login")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("browser: %v\n%s", err, r)
		}
	default:
		t.Fatalf("no login URL was printed: %s", r)
	}
	if r.Code != 0 || !strings.Contains(r.Stderr, `logged in to context "dev" (`+cp.API+") as dev") {
		t.Fatalf("login: %s", r)
	}

	st := u.stoa(nil, "status")
	for _, want := range []string{"context:     dev (" + cp.API + ")", "WARNING:     DEVELOPMENT ISSUER at " + cp.Issuer, "role:        control-plane",
		"api        " + cp.API} {
		if !strings.Contains(st.Stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	if strings.Contains(st.Stdout, "proxy") || strings.Contains(st.Stdout, "mcp") {
		t.Errorf("a control plane serves no traffic, yet status lists:\n%s", st)
	}

	// The everyday commands, through HTTPS, with the same output.
	specs := writeSpecs(t, acmeSpecs("http://127.0.0.1:9/billing"))
	if r := u.stoa(nil, "diff", "-f", specs); r.Code != 2 || !strings.Contains(r.Stdout, "create Tool/acme/billing") { // 2: there are differences
		t.Fatalf("diff: %s", r)
	}
	expect(t, u.stoa(nil, "apply", "-f", specs), 0, "apply")
	if r := u.stoa(nil, "get", "tools", "-A"); r.Code != 0 || !strings.Contains(r.Stdout, "billing") {
		t.Fatalf("get: %s", r)
	}
	actor := "oidc:" + cp.Issuer + "#dev"
	if r := u.stoa(nil, "history"); r.Code != 0 || !strings.Contains(r.Stdout, actor) {
		t.Fatalf("history shows the token's subject as the actor: %s", r)
	}
	if r := u.stoa(nil, "events", "--last", "5"); r.Code != 0 || !strings.Contains(r.Stdout, "revision 1: 3 to create") {
		t.Fatalf("events: %s", r)
	}
	key := u.stoa(nil, "keys", "create", "--consumer", "shop", "-n", "acme", "-o", "json")
	var created api.KeyCreateResponse
	if key.Code != 0 || json.Unmarshal([]byte(key.Stdout), &created) != nil || !strings.HasPrefix(created.Key, "stoa_sk_") {
		t.Fatalf("keys create: %s", key)
	}
	if r := u.stoa(nil, "keys", "list", "-A"); r.Code != 0 || !strings.Contains(r.Stdout, created.Info.ID) {
		t.Fatalf("keys list: %s", r)
	}
	waitUntil(t, 30*time.Second, "the audit trail of the apply and the key", func() bool {
		r := u.stoa(nil, "audit")
		return r.Code == 0 && strings.Contains(r.Stdout, "key.create") && strings.Contains(r.Stdout, actor)
	})
	// The local socket keeps working, as root, without a token.
	if r := cp.Stoa("get", "tools", "-A"); r.Code != 0 || !strings.Contains(r.Stdout, "billing") {
		t.Fatalf("socket: %s", r)
	}

	// CI: client credentials of the development issuer's confidential
	// client.
	ci := newCLIUser(t)
	ci.addContext("dev", cp, "--client-id", "stoa-ci")
	secret := "STOA_CLIENT_SECRET=" + cp.CISecret
	if r := ci.stoa([]string{secret}, "login", "--client-credentials"); r.Code != 0 || !strings.Contains(r.Stderr, "as stoa-ci") {
		t.Fatalf("client credentials: %s", r)
	}
	if r := ci.stoa([]string{secret}, "get", "tools", "-A"); r.Code != 0 || !strings.Contains(r.Stdout, "billing") {
		t.Fatalf("get as CI: %s", r)
	}

	// No token, a token that is not a JWT, an API key: 401 with a
	// challenge and the envelope, and nothing else said.
	c := cp.Client()
	for _, tc := range []struct{ name, auth, want string }{
		{"no token", "", "no bearer token"},
		{"garbage", "Bearer not.a.jwt", "token refused"},
		{"api key", "Bearer " + created.Key, "API keys are not accepted"},
	} {
		req, _ := http.NewRequest("GET", cp.API+"/v1/objects", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body api.ErrorBody
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || body.Error == nil ||
			body.Error.Code != api.CodeUnauthorized || !strings.Contains(body.Error.Message, tc.want) {
			t.Errorf("%s: %d %q %+v", tc.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body.Error)
		}
	}
	// A token the CLI stored for this context, sent by $STOA_TOKEN to
	// another control plane's... here: an expired one is refused with
	// exit 4 and the hint to log in.
	if r := u.stoa([]string{"STOA_TOKEN=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"}, "get", "tools"); r.Code != 4 || !strings.Contains(r.Stderr, "refused the token") {
		t.Fatalf("a foreign token: %s", r)
	}
	// Plain http on the TLS port is not served.
	if resp, err := http.Get("http://" + strings.TrimPrefix(cp.API, "https://") + "/v1/status"); err == nil {
		if resp.StatusCode < 400 {
			t.Errorf("plain http answered %d", resp.StatusCode)
		}
		resp.Body.Close()
	}
}
