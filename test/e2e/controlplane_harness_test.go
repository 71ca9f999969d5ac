package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"github.com/stoa-gateway/stoa/pkg/store/pgstore/pgtest"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/devidp/devidptest"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// Control planes under test: real stoad binaries with --role
// control-plane on a real PostgreSQL, and real stoa binaries on remote
// contexts. No test here imports a database driver (pkg/store's deps
// test): databases are made with createdb, private servers with initdb
// and pg_ctl.

// pgDatabase creates a database on the local PostgreSQL server (over its
// unix socket, as the OS user's role, like pkg/store/pgstore's tests),
// dropped when the test ends, and returns its URL.
func pgDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "stoa_e2e_" + hex.EncodeToString(b[:])
	if out, err := exec.Command("createdb", "-h", "/var/run/postgresql", name).CombinedOutput(); err != nil {
		pgtest.Unavailable(t, "%s", fmt.Sprintf("PostgreSQL is not reachable (createdb: %s %v): install and start it, and create a role for your OS user "+
			"(runuser -u postgres -- createuser --superuser $USER)", bytes.TrimSpace(out), err))
	}
	t.Cleanup(func() { exec.Command("dropdb", "-h", "/var/run/postgresql", "--force", name).Run() })
	return "postgres:///" + name + "?host=/var/run/postgresql"
}

// cpDaemon is a stoad --role control-plane.
type cpDaemon struct {
	*Daemon
	API         string             // https://127.0.0.1:port
	Fingerprint tlspin.Fingerprint // of its self-signed certificate
	// With --dev-issuer: the issuer, the dev user's password and the CI
	// client's secret, as the banner prints them.
	Issuer, DevPassword, CISecret string
}

var (
	fingerprintRE = regexp.MustCompile(`SHA256:[0-9A-F:]{95}`)
	devPasswordRE = regexp.MustCompile(`# user dev, password ([0-9a-f]+)`)
	ciSecretRE    = regexp.MustCompile(`STOA_CLIENT_SECRET=([0-9a-f]+)`)
)

// newControlPlane prepares a control plane on store (a postgres:// URL).
func newControlPlane(t *testing.T, store string, extra ...string) *cpDaemon {
	t.Helper()
	api := freePort(t)
	d := NewDaemon(t, append([]string{"--role", "control-plane", "--store", store, "--api-listen", api}, extra...)...)
	return &cpDaemon{Daemon: d, API: "https://" + api}
}

// Start starts it and reads its banner.
func (c *cpDaemon) Start() {
	c.t.Helper()
	c.Daemon.Start()
	waitUntil(c.t.(*testing.T), 30*time.Second, "the control plane's banner", func() bool {
		return fingerprintRE.MatchString(c.Log())
	})
	log := c.Log()
	fp, err := tlspin.Parse(fingerprintRE.FindString(log))
	if err != nil {
		c.t.Fatalf("fingerprint in the log: %v\n%s", err, log)
	}
	c.Fingerprint = fp
	if m := devPasswordRE.FindStringSubmatch(log); m != nil {
		c.Issuer, c.DevPassword = c.API+"/dev-idp", m[1]
		c.CISecret = ciSecretRE.FindStringSubmatch(log)[1]
	}
}

// Client is an HTTPS client that trusts exactly this control plane.
func (c *cpDaemon) Client() *http.Client { return tlspin.HTTPClient(c.Fingerprint, 30*time.Second) }

// Ready reports the answer of /readyz.
func (c *cpDaemon) Ready() (int, string) {
	resp, err := http.Get("http://" + c.Ops + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cliUser is a person's stoa configuration: contexts and tokens in a
// directory of their own, no keyring (the 0600 file), no display (login
// prints its URL).
type cliUser struct {
	t      *testing.T
	config string
}

func newCLIUser(t *testing.T) *cliUser { return &cliUser{t: t, config: t.TempDir()} }

func (u *cliUser) env(extra ...string) []string {
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
	return append(append(env, "XDG_CONFIG_HOME="+u.config, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/stoa-e2e-bus", "NO_COLOR=1"), extra...)
}

// stoa runs the CLI with the user's configuration (and extra
// environment, e.g. STOA_TOKEN=…).
func (u *cliUser) stoa(env []string, args ...string) Result {
	u.t.Helper()
	return u.stoaIn(env, "", args...)
}

func (u *cliUser) stoaIn(env []string, stdin string, args ...string) Result {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "stoa"), args...)
	cmd.Env = u.env(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		u.t.Fatalf("run stoa %v: %v", args, err)
	}
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// addContext makes name a context for cp (the development issuer's, if
// cp has one) and the current one.
func (u *cliUser) addContext(name string, cp *cpDaemon, extra ...string) {
	u.t.Helper()
	args := []string{"context", "add", name, "--server", cp.API, "--fingerprint", cp.Fingerprint.String(), "--use"}
	if cp.Issuer != "" {
		args = append(args, "--issuer", cp.Issuer, "--issuer-fingerprint", cp.Fingerprint.String())
	}
	expect(u.t, u.stoa(nil, append(args, extra...)...), 0, "context add")
}

// follow starts a long-running stoa (events --follow, get --watch) and
// collects its stdout lines until the test ends.
type follower struct {
	mu    sync.Mutex
	lines []string
	cmd   *exec.Cmd
	done  chan struct{}
}

func (u *cliUser) follow(env []string, args ...string) *follower {
	u.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "stoa"), args...)
	cmd.Env = u.env(env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		u.t.Fatal(err)
	}
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	f := &follower{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			f.mu.Unlock()
		}
	}()
	u.t.Cleanup(func() {
		cmd.Process.Kill()
		<-f.done
		cmd.Wait()
		if u.t.Failed() {
			u.t.Logf("stoa %v stderr:\n%s", args, errb.String())
		}
	})
	return f
}

// has reports whether a line contains s.
func (f *follower) has(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// writeSpecs writes YAML to a file of the test's and returns its path.
func writeSpecs(t *testing.T, yaml string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "specs.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// extIssuer is an identity provider outside the control plane (what
// --oidc-issuer names in production): a devidp served by the test on TLS,
// whose certificate the control planes trust through SSL_CERT_FILE.
type extIssuer struct {
	*devidptest.Server
	Audience string
	certFile string
}

func startIssuer(t *testing.T, users ...devidp.User) *extIssuer {
	t.Helper()
	const aud = "https://control-plane.e2e"
	s := devidptest.Start(t, devidp.Config{Audience: aud, Users: users})
	f := filepath.Join(t.TempDir(), "issuer.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.TLS.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &extIssuer{Server: s, Audience: aud, certFile: f}
}

// controlPlane prepares a control plane that trusts the issuer's tokens.
func (i *extIssuer) controlPlane(t *testing.T, store string, extra ...string) *cpDaemon {
	t.Helper()
	cp := newControlPlane(t, store, append([]string{"--oidc-issuer", i.URL, "--oidc-audience", i.Audience}, extra...)...)
	cp.Env = append(cp.Env, "SSL_CERT_FILE="+i.certFile)
	return cp
}

// token is STOA_TOKEN=<an access token of user>, for the CLI's
// environment.
func (i *extIssuer) token(t *testing.T, user string) []string {
	t.Helper()
	tok, err := i.MintToken(user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"STOA_TOKEN=" + tok}
}
