package daemon

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/auth"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/keys"
	"github.com/stoa-gateway/stoa/pkg/localapi"
	"github.com/stoa-gateway/stoa/pkg/quota"
	"github.com/stoa-gateway/stoa/pkg/rbac"
	"github.com/stoa-gateway/stoa/pkg/snapshot"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/telemetry"
	"github.com/stoa-gateway/stoa/pkg/telemetry/stats"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
	"github.com/stoa-gateway/stoa/pkg/webhook"
)

// devIssuerPath is where --dev-issuer serves the development issuer on
// the API listener.
const devIssuerPath = "/dev-idp"

// The development issuer's identities: a person who is cluster admin, and
// a confidential client for scripts (--client-credentials).
const (
	devUser     = "dev"
	devCIClient = "stoa-ci"
	devAdmins   = "stoa-admins"
)

// controlPlane is what --role control-plane adds to stoad: the LocalAPI
// over HTTPS, OIDC tokens checked with pkg/auth, role bindings compiled
// from every revision, and with --dev-issuer a development issuer.
type controlPlane struct {
	ln          net.Listener
	url         string // https://host:port of the API
	tls         *tls.Config
	fingerprint tlspin.Fingerprint
	selfSigned  bool
	resolver    *auth.Resolver
	roles       *rbac.Authorizer
	bootstrap   rbac.Matchers
	issuers     []string

	dev         *devidp.Provider // nil without --dev-issuer
	devPassword string
	devSecret   string

	fleet *cpFleet // nil without --bundle-signing-key
}

// newControlPlane opens the API listener (its address decides the
// development issuer's URL), loads or makes its certificate and builds
// the token verifier.
func newControlPlane(d *Daemon) (*controlPlane, error) {
	cfg := d.cfg
	if cfg.DevIssuer {
		if err := devidp.CheckListenAddr(cfg.APIListen, false); err != nil {
			return nil, fmt.Errorf("--dev-issuer: %w (a development issuer mints admin tokens: it serves this machine only)", err)
		}
	}
	cert, fp, self, err := apiCertificate(cfg, d.log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.APIListen)
	if err != nil {
		return nil, fmt.Errorf("control plane API listener %s: %w", cfg.APIListen, err)
	}
	cp := &controlPlane{ln: ln, url: "https://" + ln.Addr().String(), fingerprint: fp, selfSigned: self,
		roles: rbac.NewAuthorizer(nil), issuers: append([]string(nil), cfg.OIDCIssuers...)}
	cp.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	audience := cfg.OIDCAudience
	if audience == "" {
		audience = cp.url
	}
	cp.bootstrap = rbac.Matchers{Groups: cfg.AdminGroups, Subjects: cfg.AdminSubjects}
	if cfg.DevIssuer {
		if err := cp.startDevIssuer(d, audience); err != nil {
			ln.Close()
			return nil, err
		}
	}
	// The issuers' keys are fetched over https with the system's roots
	// (SSL_CERT_FILE adds a private CA) and this listener's own
	// certificate, which the development issuer is served with.
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			ln.Close()
			return nil, fmt.Errorf("API certificate: %w", err)
		}
	}
	roots.AddCert(cert.Leaf)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}}}
	var ids []auth.Identity
	for _, iss := range cp.issuers {
		// pkg/auth maps tokens to tenants; here every issuer is its own
		// "tenant" and roles come from the bindings instead.
		ids = append(ids, auth.Identity{Tenant: iss, Issuer: iss, Audiences: []string{audience}})
	}
	cp.resolver, err = auth.NewResolver(auth.ResolverConfig{Identities: ids,
		KeySets: auth.NewKeySets(auth.KeySetOptions{HTTPClient: client, Logger: d.log.With("component", "oidc")})})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--oidc-issuer: %w", err)
	}
	return cp, nil
}

// startDevIssuer builds the development issuer at URL/dev-idp with a user
// and a CI client who are cluster admins (their group is bound, pinned to
// this issuer, like --admin-group would), with passwords made now.
func (cp *controlPlane) startDevIssuer(d *Daemon, audience string) error {
	cp.devPassword, cp.devSecret = randomWord(), randomWord()
	iss := cp.url + devIssuerPath
	p, err := devidp.New(devidp.Config{
		Issuer:   iss,
		Audience: audience,
		Users:    []devidp.User{{Username: devUser, Password: cp.devPassword, Groups: []string{devAdmins}, Name: "Developer"}},
		Clients: []devidp.Client{
			{ID: devidp.DefaultClientID},
			{ID: devCIClient, Secret: cp.devSecret, Groups: []string{devAdmins}},
		},
		Logger: d.log.With("component", "dev-issuer"),
	})
	if err != nil {
		return fmt.Errorf("--dev-issuer: %w", err)
	}
	cp.dev = p
	cp.issuers = append(cp.issuers, iss)
	cp.bootstrap.Groups = append(cp.bootstrap.Groups, iss+"#"+devAdmins)
	return nil
}

func randomWord() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// server is the LocalAPI on the API listener: bearer tokens, roles, and
// the development issuer under /dev-idp/.
func (cp *controlPlane) server(d *Daemon) server {
	srv := localapi.New(localapi.Options{Daemon: d, Services: d.services, TLS: cp.tls,
		Identity: localapi.BearerTokens{Verifier: cp.resolver}, Authorizer: localapi.Roles{Bindings: cp.roles}})
	if cp.dev != nil {
		srv.Mount(devIssuerPath+"/", http.StripPrefix(devIssuerPath, cp.dev.Handler()))
	}
	if cp.fleet != nil {
		// Data planes' routes: their own credentials (join tokens,
		// client certificates), never a bearer token.
		srv.Mount(fleet.PathPrefix, cp.fleet.srv.Handler())
	}
	return apiServer{Server: srv, ln: cp.ln, addr: cp.url}
}

// apiServer is the LocalAPI on the control plane's HTTPS listener.
type apiServer struct {
	*localapi.Server
	ln   net.Listener
	addr string
}

func (a apiServer) Name() string { return "api" }
func (a apiServer) Addr() string { return a.addr }
func (a apiServer) Serve() error { return a.Server.Serve(a.ln) }

// banner tells the operator how to reach the control plane: the
// certificate to pin, and with the development issuer the commands that
// log in.
func (cp *controlPlane) banner(w io.Writer) {
	if w == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "stoad: control plane API on %s\n", cp.url)
	if cp.selfSigned {
		fmt.Fprintf(&b, "stoad: its certificate is self-signed; clients pin its fingerprint:\n  %s\n", cp.fingerprint)
	}
	if cp.dev != nil {
		pin := ""
		if cp.selfSigned {
			pin = fmt.Sprintf(" \\\n      --fingerprint %s --issuer-fingerprint %s", cp.fingerprint, cp.fingerprint)
		}
		fmt.Fprintf(&b, `
  ====================================================================
  DEVELOPMENT ISSUER at %s%s — NOT FOR PRODUCTION
  It mints cluster-admin tokens for anyone on this machine who logs in.
  ====================================================================
  Log in with the stoa CLI:

    stoa context add dev --server %s \
      --issuer %s%s%s --use
    stoa login          # user %s, password %s
    stoa status

  In scripts: stoa login --client-credentials with client %s
  (stoa context add … --client-id %s) and STOA_CLIENT_SECRET=%s
  The issuer's keys and these passwords last until stoad stops.

`, cp.url, devIssuerPath, cp.url, cp.url, devIssuerPath, pin, devUser, cp.devPassword, devCIClient, devCIClient, cp.devSecret)
	}
	io.WriteString(w, b.String())
}

// ControlPlaneRuntimes builds what a control plane runs: no proxy, MCP,
// XDP or limiter (it serves no traffic), but every service of the
// LocalAPI — keys, quotas, snapshots, webhooks, audit, statistics — and
// the role bindings, compiled from every revision.
func ControlPlaneRuntimes(d *Daemon) ([]state.Runtime, error) {
	cp, err := newControlPlane(d)
	if err != nil {
		return nil, err
	}
	d.cp = cp
	ks, err := keys.New(keys.Options{Store: d.store, Auth: &auth.Authenticator{}, Events: d.events, Log: d.log})
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	d.keys = ks
	admission, err := quota.NewAdmission(quota.AdmissionOptions{Store: d.store, Events: d.events, Metrics: d.metrics, Log: d.log})
	if err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}
	trail, err := audit.NewTrail(audit.TrailOptions{Store: d.store, Events: d.events, Log: d.log,
		Revision: func() int64 { return d.Live().Revision }})
	if err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}
	snapshots, err := snapshot.NewRuntime(snapshot.RuntimeOptions{Store: d.store, Metrics: d.metrics, Log: d.log,
		Live: d.Live, Audit: trail})
	if err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}
	webhooks, err := webhook.NewRuntime(webhook.RuntimeOptions{Store: d.store, Events: d.events, Metrics: d.metrics,
		Log: d.log, Audit: trail, AllowPrivate: envTrue("STOAD_WEBHOOK_ALLOW_PRIVATE")})
	if err != nil {
		return nil, fmt.Errorf("api management: %w", err)
	}
	d.follow = followers{keys: ks, webhooks: webhooks, quotas: admission}
	d.services = localapi.Services{Keys: ks, Quotas: admission, Snapshots: snapshots, Webhooks: webhooks, Audit: trail,
		// No traffic passes here: the statistics are the live tenants
		// and tools with zero figures (data planes have the traffic).
		Stats: stats.NewHub(stats.Options{Source: d, Registry: telemetry.NewRegistry(), Log: d.log})}
	roles := &rolesRuntime{authz: cp.roles, bootstrap: cp.bootstrap, issuers: cp.issuers}
	rts := []state.Runtime{roles, admission, trail, snapshots, webhooks}
	if d.cfg.BundleSigningKey != "" {
		if cp.fleet, err = newFleet(d, cp); err != nil {
			return nil, err
		}
		d.services.Fleet = cp.fleet
		rts = append(rts, cp.fleet)
	}
	return rts, nil
}

// rolesRuntime compiles the role bindings of every revision — the
// Tenants' spec.access, the Gateway's spec.access and the flags — so a
// revision with bindings the control plane cannot use is refused at
// apply, naming the Tenant and the field.
type rolesRuntime struct {
	authz     *rbac.Authorizer
	bootstrap rbac.Matchers
	issuers   []string
	bound     atomic.Int64 // tenants with bindings in the live revision
}

func (r *rolesRuntime) Name() string { return "roles" }

func (r *rolesRuntime) Prepare(rev *state.Revision) (func(), error) {
	cfg := rbac.Config{Tenants: map[string][]rbac.AccessEntry{}, Bootstrap: r.bootstrap, Issuers: r.issuers}
	for _, o := range rev.OfKind(spec.KindTenant) {
		ts, _ := o.Spec.(*spec.TenantSpec)
		if ts == nil {
			continue
		}
		entries := make([]rbac.AccessEntry, len(ts.Access))
		for i, e := range ts.Access {
			entries[i] = rbac.AccessEntry{Role: e.Role, Groups: e.Groups, Subjects: e.Subjects, Claims: e.Claims}
		}
		cfg.Tenants[o.Metadata.Name] = entries
	}
	if gw := rev.Gateway(); gw != nil && gw.Access != nil {
		cfg.Gateway.GroupsClaim = gw.Access.GroupsClaim
		if a := gw.Access.Admins; a != nil {
			cfg.Gateway.Admins = rbac.Matchers{Groups: a.Groups, Subjects: a.Subjects, Claims: a.Claims}
		}
	}
	b, err := rbac.Compile(cfg)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, es := range cfg.Tenants {
		if len(es) > 0 {
			n++
		}
	}
	return func() { r.authz.Set(b); r.bound.Store(int64(n)) }, nil
}

func (r *rolesRuntime) Start(context.Context) error { return nil }
func (r *rolesRuntime) Stop(context.Context) error  { return nil }

func (r *rolesRuntime) Status() api.Component {
	return api.Component{Name: "roles", State: "ok",
		Detail: fmt.Sprintf("%d tenants bind roles; %d bootstrap admin matchers", r.bound.Load(), len(r.bootstrap.Groups)+len(r.bootstrap.Subjects)),
		Data:   map[string]any{"issuers": r.issuers}}
}
