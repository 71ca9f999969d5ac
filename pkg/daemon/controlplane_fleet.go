package daemon

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
	"github.com/stoa-gateway/stoa/pkg/fleet/controlplane"
	"github.com/stoa-gateway/stoa/pkg/state"
)

// A control plane with --bundle-signing-key serves data planes: the
// /v1/fleet/ routes on its HTTPS listener (client certificates of the
// fleet CA, requested but not required, so the CLI's bearer tokens keep
// working on the same listener), every revision turned into a signed
// bundle, and the data planes and join tokens through the LocalAPI.

// bundleKeyPasswordEnv holds the signing key's password, as for cosign.
const bundleKeyPasswordEnv = "COSIGN_PASSWORD"

// cpFleet is a control plane's fleet side.
type cpFleet struct {
	srv      *controlplane.Server
	src      *controlplane.MemorySource
	follower *controlplane.Follower
	keyID    string
	events   *events.Log

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// newFleet loads the signing key and the fleet CA (shared by replicas
// through the store) and builds the fleet server.
func newFleet(d *Daemon, cp *controlPlane) (*cpFleet, error) {
	path := d.cfg.BundleSigningKey
	signer, err := bundle.LoadSignerFile(path, []byte(os.Getenv(bundleKeyPasswordEnv)))
	if err != nil {
		return nil, fmt.Errorf("--bundle-signing-key %s: %w (the password is read from $%s)", path, err, bundleKeyPasswordEnv)
	}
	pub, err := signer.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("--bundle-signing-key %s: %w", path, err)
	}
	keyID, err := fleet.KeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("--bundle-signing-key %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	authority, err := ca.FromStore(ctx, d.store, time.Now())
	if err != nil {
		return nil, fmt.Errorf("fleet CA: %w", err)
	}
	log := d.log.With("component", "fleet")
	src := controlplane.NewMemorySource(0)
	srv, err := controlplane.NewServer(controlplane.Config{Store: d.store, CA: authority, Source: src, KeyID: keyID, Log: log,
		OnEvent: func(e api.Event) { d.events.Emit(e.Type, e.Tenant, e.Message, e.Data) }})
	if err != nil {
		return nil, err
	}
	if err := d.metrics.Register(srv.Collector()); err != nil {
		return nil, fmt.Errorf("fleet metrics: %w", err)
	}
	cp.tls = authority.ServerTLSConfig(cp.tls)
	f := &cpFleet{srv: srv, src: src, keyID: keyID, events: d.events,
		follower: &controlplane.Follower{Store: d.store, Signer: signer, Source: src, Log: log}}
	d.log.Info("fleet: data planes may join", "bundle_key", keyID)
	return f, nil
}

// The fleet as a runtime: its Follower publishes each revision's bundle
// from the store (so every replica serves every revision, whoever
// committed it).

func (f *cpFleet) Name() string { return "fleet" }

func (f *cpFleet) Prepare(*state.Revision) (func(), error) { return func() {}, nil }

func (f *cpFleet) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ctx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		f.follower.Run(ctx)
	}()
	return nil
}

func (f *cpFleet) Stop(ctx context.Context) error {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *cpFleet) Status() api.Component {
	c := api.Component{Name: "fleet", State: "ok", Data: map[string]any{"bundleKeyId": f.keyID}}
	cur, _ := f.src.Current(context.Background())
	if cur == nil {
		c.Detail = "no revision published yet; data planes join with: stoa fleet join-token create"
		return c
	}
	c.Detail = fmt.Sprintf("revision %d published to data planes, signed with %s", cur.Bundle.Revision(), f.keyID)
	c.Data["revision"] = cur.Bundle.Revision()
	return c
}

// The fleet as the LocalAPI's Fleet service.

func (f *cpFleet) DataPlanes(ctx context.Context) (fleet.DataPlaneList, error) {
	return f.srv.DataPlanes(ctx)
}

// Tokens admit data planes, which receive every tenant's configuration:
// who made or revoked one is an event, and so in the audit trail.

func (f *cpFleet) CreateJoinToken(ctx context.Context, name string, ttl time.Duration, actor string) (fleet.NewJoinToken, error) {
	t, err := f.srv.Tokens().Create(ctx, controlplane.CreateTokenOptions{Name: name, TTL: ttl, CreatedBy: actor})
	if err == nil {
		scope := "any data plane name"
		if name != "" {
			scope = "data plane " + name
		}
		f.events.Emit("fleet.token.created", "", fmt.Sprintf("join token %s for %s created by %s, until %s", t.ID, scope, actor, t.ExpiresAt.Format(time.RFC3339)),
			map[string]any{"actor": actor, "target": "join token " + t.ID, "name": name, "expiresAt": t.ExpiresAt.Format(time.RFC3339)})
	}
	return t, err
}

func (f *cpFleet) JoinTokens(ctx context.Context) ([]fleet.JoinToken, error) {
	return f.srv.Tokens().List(ctx)
}

func (f *cpFleet) RevokeJoinToken(ctx context.Context, id string, actor string) error {
	err := f.srv.Tokens().Revoke(ctx, id)
	if err == nil {
		f.events.Emit("fleet.token.revoked", "", fmt.Sprintf("join token %s revoked by %s", id, actor),
			map[string]any{"actor": actor, "target": "join token " + id})
	}
	return err
}

func (f *cpFleet) RevokeDataPlane(ctx context.Context, name string) error {
	return f.srv.Revoke(ctx, name)
}
