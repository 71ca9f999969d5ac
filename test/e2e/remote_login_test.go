package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/devidp/devidptest"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// The stoa binary logging in to a development issuer the three ways, as a
// person would (following the URL it prints, entering the device code),
// keeping the tokens in 0600 files where there is no keyring, and using
// them against a control plane in front of a real stoad.

const loginAudience = "https://control-plane.test"

// loginEnv is an issuer, a stoad behind an HTTPS control plane stand-in
// that accepts the issuer's tokens, and a configuration directory whose
// current context "dev" points at both.
type loginEnv struct {
	t      *testing.T
	idp    *devidptest.Server
	cp     *httptest.Server
	d      *Daemon
	config string // XDG_CONFIG_HOME
}

func newLoginEnv(t *testing.T) *loginEnv {
	t.Helper()
	idp := devidptest.Start(t, devidp.Config{
		Audience: loginAudience,
		Users:    []devidp.User{{Username: "alice", Password: "alice-pw", Groups: []string{"stoa:admin"}}},
		Clients: []devidp.Client{
			{ID: devidp.DefaultClientID},
			{ID: "ci", Secret: "ci-secret", Groups: []string{"stoa:admin"}},
		},
		DevicePollInterval: time.Second,
	})
	d := NewDaemon(t)
	d.Start()
	resolver, err := auth.NewResolver(auth.ResolverConfig{
		Identities: []auth.Identity{{Tenant: "acme", Issuer: idp.URL, Audiences: []string{loginAudience}}},
		KeySets:    auth.NewKeySets(auth.KeySetOptions{HTTPClient: idp.Client()}),
		CacheTTL:   -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: "stoad"})
			pr.Out.Header.Del("Authorization")
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Socket)
		}},
		FlushInterval: -1,
	}
	cp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, err := resolver.Authenticate(r.Context(), []byte(tok), time.Now()); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: &api.Error{Code: api.CodeUnauthorized, Message: "token refused: " + err.Error()}})
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(cp.Close)
	e := &loginEnv{t: t, idp: idp, cp: cp, d: d, config: t.TempDir()}
	e.writeConfig("")
	return e
}

func (e *loginEnv) writeConfig(clientID string) {
	e.t.Helper()
	ctx := fmt.Sprintf("  - name: dev\n    server: %s\n    issuer: %s\n    fingerprint: %s\n    issuerFingerprint: %s\n",
		e.cp.URL, e.idp.URL, tlspin.Of(e.cp.Certificate().Raw), e.idp.Fingerprint)
	if clientID != "" {
		ctx += "    clientID: " + clientID + "\n"
	}
	dir := filepath.Join(e.config, "stoa")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("current-context: dev\ncontexts:\n"+ctx), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// env is the CLI's environment: its own configuration, no D-Bus session
// (so no keyring: the token file fallback) and no display (so the login
// URL is printed).
func (e *loginEnv) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_CONFIG_HOME", "STOA_CONTEXT", "STOA_SOCKET",
			"STOA_TOKEN", "STOA_CONFIG", "STOA_CLIENT_SECRET":
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "XDG_CONFIG_HOME="+e.config, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/stoa-e2e-bus", "NO_COLOR=1"), extra...)
}

// stoa runs the binary to completion.
func (e *loginEnv) stoa(env []string, args ...string) Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "stoa"), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run stoa %v: %v", args, err)
	}
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// interactive starts the binary and hands each line of its stderr to
// onLine (the user reading the terminal) until it exits.
func (e *loginEnv) interactive(env []string, onLine func(string), args ...string) Result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "stoa"), args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	pr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	var errb strings.Builder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			errb.WriteString(sc.Text() + "\n")
			onLine(sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	wg.Wait()
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run stoa %v: %v", args, err)
	}
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// checkStored checks that the token landed in the 0600 file fallback,
// said so, and works against the control plane.
func (e *loginEnv) checkStored(r Result, who string) {
	e.t.Helper()
	file := filepath.Join(e.config, "stoa", "tokens", "dev.json")
	if r.Code != 0 || r.Stdout != "" || !strings.Contains(r.Stderr, "no OS keyring available") ||
		!strings.Contains(r.Stderr, "token stored in "+file+" (mode 0600)") || !strings.Contains(r.Stderr, `logged in to context "dev" (`+e.cp.URL+") as "+who) {
		e.t.Fatalf("login: %s", r)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		e.t.Fatalf("token file: %v, mode %v", err, fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(file))
	if err != nil || di.Mode().Perm() != 0o700 {
		e.t.Fatalf("tokens directory: %v, mode %v", err, di.Mode())
	}
	st := e.stoa(e.env(), "status")
	if st.Code != 0 || !strings.Contains(st.Stdout, "context:     dev ("+e.cp.URL+")") {
		e.t.Fatalf("status through the control plane with the stored token: %s", st)
	}
}

var urlRE = regexp.MustCompile(`https?://[^\s)]+`)

// TestLoginBrowser: the default flow prints the loopback URL when no
// browser opens; following it and signing in completes the login.
func TestLoginBrowser(t *testing.T) {
	e := newLoginEnv(t)
	browser := e.idp.NewBrowser("alice", "alice-pw")
	done := make(chan error, 1)
	r := e.interactive(e.env(), func(line string) {
		if u := urlRE.FindString(line); strings.HasPrefix(u, "http://127.0.0.1:") {
			go func() {
				page, err := browser.Login(u)
				if err == nil && !strings.Contains(page.Body, "Logged in") {
					err = fmt.Errorf("landed on %s: %.200s", page.URL, page.Body)
				}
				done <- err
			}()
		}
	}, "login")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("browser: %v", err)
		}
	default:
		t.Fatalf("no login URL was printed: %s", r)
	}
	if !strings.Contains(r.Stderr, "Open this URL in a browser on this machine to log in:") || !strings.Contains(r.Stderr, "stoa login --device") {
		t.Errorf("instructions: %s", r.Stderr)
	}
	e.checkStored(r, "alice")
	// Logging out removes the file; commands then say to log in.
	if r := e.stoa(e.env(), "logout"); r.Code != 0 || !strings.Contains(r.Stderr, "removed its token from") {
		t.Fatalf("logout: %s", r)
	}
	if r := e.stoa(e.env(), "get", "tools"); r.Code != 4 || !strings.Contains(r.Stderr, "stoa login --context dev") {
		t.Fatalf("after logout: %s", r)
	}
}

var codeRE = regexp.MustCompile(`^\s+([A-Z0-9]{4,}(-[A-Z0-9]+)*)\s*$`)

// TestLoginDevice: --device prints where to go and the code; approving it
// in a browser elsewhere completes the login.
func TestLoginDevice(t *testing.T) {
	e := newLoginEnv(t)
	browser := e.idp.NewBrowser("alice", "alice-pw")
	var verification, code string
	done := make(chan error, 1)
	r := e.interactive(e.env(), func(line string) {
		switch {
		case strings.HasPrefix(line, "To log in, open "):
			verification = urlRE.FindString(line)
		case verification != "" && code == "" && codeRE.MatchString(line):
			code = codeRE.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, "Waiting for approval"):
			go func() {
				_, err := browser.Device(verification, code, true)
				done <- err
			}()
		}
	}, "login", "--device")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("approve: %v", err)
		}
	default:
		t.Fatalf("no verification URI and code: %s", r)
	}
	e.checkStored(r, "alice")
}

// TestLoginClientCredentials: CI logs in with the secret from the
// environment, or refuses without one; the secret is never stored.
func TestLoginClientCredentials(t *testing.T) {
	e := newLoginEnv(t)
	e.writeConfig("ci")
	if r := e.stoa(e.env(), "login", "--client-credentials"); r.Code != 1 || !strings.Contains(r.Stderr, "needs the client secret") {
		t.Fatalf("without a secret: %s", r)
	}
	if r := e.stoa(e.env("STOA_CLIENT_SECRET=wrong"), "login", "--client-credentials"); r.Code != 4 || !strings.Contains(r.Stderr, "invalid_client") {
		t.Fatalf("wrong secret: %s", r)
	}
	r := e.stoa(e.env("STOA_CLIENT_SECRET=ci-secret"), "login", "--client-credentials")
	e.checkStored(r, "ci")
	data, err := os.ReadFile(filepath.Join(e.config, "stoa", "tokens", "dev.json"))
	if err != nil || bytes.Contains(data, []byte("ci-secret")) {
		t.Fatalf("token file: %v (must not hold the secret)", err)
	}
	// The same commands, same output, through the remote context and the
	// local socket of the same stoad.
	if r := e.stoa(e.env(), "apply", "-f", filepath.Join(repoRoot(), "examples", "quickstart")); r.Code != 0 {
		t.Fatalf("remote apply: %s", r)
	}
	for _, args := range [][]string{{"get", "tools", "-A", "-o", "json"}, {"history"}, {"get", "tool", "nope", "-n", "acme"}} {
		remote := e.stoa(e.env(), args...)
		local := e.stoa(e.env("STOA_SOCKET="+e.d.Socket), args...)
		if remote.Code != local.Code || remote.Stdout != local.Stdout || remote.Stderr != local.Stderr {
			t.Errorf("stoa %v differs:\nremote: %s\nlocal: %s", args, remote, local)
		}
	}
}
