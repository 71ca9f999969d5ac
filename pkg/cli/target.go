package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cliconfig"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/login"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// EnvClientSecret holds a confidential client's secret, for
// `stoa login --client-credentials` and for renewing its tokens.
const EnvClientSecret = "STOA_CLIENT_SECRET"

// Where a target was chosen, beyond cliconfig's sources: an explicit
// socket means the local daemon at that socket.
const (
	sourceSocketFlag = "--socket"
	sourceSocketEnv  = "$" + api.SocketEnv
)

// target is what a command talks to: a context and how it was chosen.
type target struct {
	ctx cliconfig.Context
	// source says what selected it: --context, $STOA_CONTEXT,
	// current-context, --socket, $STOA_SOCKET or default.
	source string
	// socket is the unix socket of a local target.
	socket string
	// token is $STOA_TOKEN (remote targets only).
	token string
}

func (t target) remote() bool { return !t.ctx.IsLocal() }

func (f *Factory) getenv(k string) string {
	if f.Getenv != nil {
		return f.Getenv(k)
	}
	return os.Getenv(k)
}

// loadConfig reads config.yaml ($STOA_CONFIG or the XDG default).
func (f *Factory) loadConfig() (*cliconfig.Config, error) {
	path, err := cliconfig.DefaultPath(f.getenv)
	if err != nil {
		return nil, err
	}
	return cliconfig.Load(path)
}

// resolveTarget picks what commands talk to. Flags beat the environment,
// which beats the configuration file, and at each level a named context
// beats a socket path (docker does the same with --context, --host,
// DOCKER_CONTEXT and DOCKER_HOST):
//
//	--context NAME > --socket PATH > $STOA_CONTEXT > $STOA_SOCKET > current-context > local
//
// A socket always means the local daemon; with --context local it says
// which socket. --socket with another context is a conflict.
func (f *Factory) resolveTarget() (target, error) {
	if f.resolved {
		return f.target, f.targetErr
	}
	f.resolved = true
	f.target, f.targetErr = f.doResolveTarget()
	return f.target, f.targetErr
}

func (f *Factory) doResolveTarget() (target, error) {
	envSocket := f.getenv(api.SocketEnv)
	local := func(source, socket string) target {
		return target{ctx: cliconfig.Local(), source: source, socket: client.ResolveSocket(socket)}
	}
	fromConfig := func(flag string) (target, error) {
		cfg, err := f.loadConfig()
		if err != nil {
			return target{}, err
		}
		sel, err := cfg.Resolve(flag, f.getenv)
		if err != nil {
			return target{}, err
		}
		t := target{ctx: sel.Context, source: string(sel.Source), token: sel.Token}
		switch {
		case sel.Context.Name == cliconfig.LocalContext:
			socket := f.Socket
			if socket == "" {
				socket = envSocket
			}
			t.socket = client.ResolveSocket(socket)
		case sel.Context.IsLocal():
			if f.Socket != "" && flag != "" {
				return target{}, fmt.Errorf("--socket and --context %s name two daemons: drop one", sel.Context.Name)
			}
			t.socket = sel.Context.SocketPath()
		case f.Socket != "" && flag != "":
			return target{}, fmt.Errorf("--socket names the local daemon, --context %s a control plane: drop one", sel.Context.Name)
		}
		return t, nil
	}
	switch {
	case f.ContextName != "":
		return fromConfig(f.ContextName)
	case f.Socket != "":
		return local(sourceSocketFlag, f.Socket), nil
	case f.getenv(cliconfig.EnvContext) != "":
		return fromConfig("")
	case envSocket != "":
		return local(sourceSocketEnv, envSocket), nil
	}
	// Without HOME or XDG_CONFIG_HOME (a service's or cron's bare
	// environment) there is no configuration and nothing selects a
	// context: the local stoad, as before contexts existed.
	if _, err := cliconfig.DefaultPath(f.getenv); err != nil {
		return local(string(cliconfig.SourceDefault), ""), nil
	}
	return fromConfig("")
}

// newClient builds the client of the resolved target: the unix socket
// for local contexts, HTTPS for control planes. A target that cannot be
// resolved gives a client whose calls fail with the reason.
func (f *Factory) newClient() client.API {
	t, err := f.resolveTarget()
	if err != nil {
		return client.Unusable("", err)
	}
	if !t.remote() {
		return client.New(t.socket)
	}
	c, err := f.newRemote(t)
	if err != nil {
		return client.Unusable(t.ctx.Server, fmt.Errorf("context %q: %w", t.ctx.Name, err))
	}
	return c
}

func (f *Factory) newRemote(t target) (*client.Remote, error) {
	x := t.ctx
	o := client.RemoteOptions{
		Server:       x.Server,
		Context:      x.Name,
		LoginCommand: "stoa login --context " + x.Name,
		PinCommand: func(fp string) string {
			pinned := x
			pinned.Fingerprint = fp
			return contextAddCommand(pinned)
		},
	}
	pin, ok, err := x.ServerFingerprint()
	if err != nil {
		return nil, err
	}
	if ok {
		o.Pin = &pin
	}
	switch {
	case t.token != "":
		o.Tokens, o.TokenFromEnv = login.StaticTokenSource(t.token), true
	case x.Issuer != "":
		o.Tokens = &storedTokens{f: f, ctx: x}
	}
	return client.NewRemote(o)
}

// contextAddCommand is the command that recreates x with
// --overwrite, for hints that change one setting (a pin).
func contextAddCommand(x cliconfig.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stoa context add %s --server %s", x.Name, x.Server)
	for _, kv := range [][2]string{{"--issuer", x.Issuer}, {"--client-id", x.ClientID}, {"--audience", x.Audience},
		{"--fingerprint", x.Fingerprint}, {"--issuer-fingerprint", x.IssuerFingerprint}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s %s", kv[0], kv[1])
		}
	}
	for _, s := range x.Scopes {
		fmt.Fprintf(&b, " --scope %s", s)
	}
	b.WriteString(" --overwrite")
	return b.String()
}

// tokenStore is where logins are kept: the OS keyring with a file
// fallback under stoa's configuration directory.
func (f *Factory) tokenStore() (*login.Store, error) {
	dir, err := cliconfig.Dir(f.getenv)
	if err != nil {
		return nil, err
	}
	if f.TokenStore != nil {
		return f.TokenStore(dir), nil
	}
	return login.NewStore(dir), nil
}

// issuerClient talks to a context's OIDC issuer: pinned when the context
// pins the issuer's certificate, the system roots otherwise.
func issuerClient(x cliconfig.Context) (*http.Client, error) {
	const timeout = 30 * time.Second
	pin, ok, err := x.IssuerPin()
	if err != nil {
		return nil, err
	}
	if ok {
		return tlspin.HTTPClient(pin, timeout), nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// storedTokens is the context's stored login, loaded on the first
// request (so that commands that never call the control plane never
// touch the keyring) and renewed before it expires.
type storedTokens struct {
	f   *Factory
	ctx cliconfig.Context

	once sync.Once
	src  *login.TokenSource
	err  error
}

func (s *storedTokens) Token() (*oauth2.Token, error) {
	s.once.Do(func() {
		store, err := s.f.tokenStore()
		if err != nil {
			s.err = err
			return
		}
		hc, err := issuerClient(s.ctx)
		if err != nil {
			s.err = err
			return
		}
		now := s.f.Now
		if now == nil {
			now = time.Now
		}
		s.src, s.err = login.LoadTokenSource(context.Background(), store, s.ctx.Name, s.ctx.Issuer, s.ctx.ClientID, s.ctx.Audience,
			login.SourceOptions{HTTPClient: hc, ClientSecret: s.f.getenv(EnvClientSecret), Now: now, Stderr: s.f.IO.ErrOut})
	})
	if s.err != nil {
		return nil, s.err
	}
	return s.src.Token()
}

// ContextInfo says which context a command talks to, for stoa status and
// stoa version.
type ContextInfo struct {
	Name string `json:"name"`
	// Endpoint is the daemon's socket or the control plane's URL.
	Endpoint string `json:"endpoint"`
	// Source is what selected the context: --context, $STOA_CONTEXT,
	// current-context, --socket, $STOA_SOCKET or default.
	Source string `json:"source"`
}

// contextInfo describes the client's target.
func (f *Factory) contextInfo() ContextInfo {
	t, err := f.resolveTarget()
	if err != nil {
		return ContextInfo{}
	}
	return ContextInfo{Name: t.ctx.Name, Endpoint: f.Client().Endpoint(), Source: t.source}
}

func (c ContextInfo) String() string {
	if c.Name == "" {
		return "none (it could not be selected)"
	}
	return fmt.Sprintf("%s (%s)", c.Name, c.Endpoint)
}

// errLocalContext is returned by login and logout for a local context.
func errLocalContext(name string) error {
	return &hintError{
		err:  fmt.Errorf("context %s talks to a local stoad over its unix socket: there is nothing to log in to", name),
		hint: "pick a control plane's context with --context NAME (list them with: stoa context list)",
	}
}
