package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/fleet/dataplane"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
	"github.com/stoa-gateway/stoa/pkg/version"
)

// fleetSource is a data plane: a dataplane.Syncer joins the control plane,
// follows it, verifies every bundle (signature with the pinned key,
// digest, revision never backwards) and hands it to the daemon; refusals
// become events (fleet.bundle.refused) and the daemon's metrics
// (stoa_fleet_bundle_refusals_total).
type fleetSource struct {
	d      *Daemon
	url    string
	syncer *dataplane.Syncer
}

func newFleetSource(d *Daemon, sc *SourceConfig) (*fleetSource, error) {
	v, err := bundle.LoadVerifierFile(sc.BundleKey)
	if err != nil {
		return nil, withHint(fmt.Errorf("--bundle-key: %w", err))
	}
	token, err := sc.joinToken()
	if err != nil {
		return nil, err
	}
	var fp tlspin.Fingerprint
	if sc.JoinFingerprint != "" {
		if fp, err = tlspin.Parse(sc.JoinFingerprint); err != nil {
			return nil, fmt.Errorf("--join-fingerprint: %w", err)
		}
	}
	addr := sc.Advertise
	if addr == "" {
		addr = d.cfg.Listen
	}
	f := &fleetSource{d: d, url: sc.Join}
	f.syncer, err = dataplane.New(dataplane.Config{
		ControlPlane: sc.Join, JoinToken: token, Name: sc.Name, Address: addr,
		StateDir: sc.dir(d.cfg.StateDir), Verifier: v, Fingerprint: fp,
		Apply:   f.apply,
		OnEvent: func(e api.Event) { d.events.Emit(e.Type, e.Tenant, e.Message, e.Data) },
		Version: version.Version, Log: d.log.With("component", "fleet"),
	})
	if err != nil {
		return nil, err
	}
	d.metrics.MustRegister(f.syncer.Collector())
	return f, nil
}

// apply is the Syncer's Apply: a verified revision through the daemon's
// pipeline.
func (f *fleetSource) apply(rev int64, objs []*spec.Object) error {
	return f.d.applyBundle(rev, objs, "controlplane:"+f.url, fmt.Sprintf("revision %d of the control plane %s", rev, f.url))
}

func (f *fleetSource) start(ctx context.Context, fatal func(error)) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Run returns early only for a configuration error (no identity
		// and no join token; an identity of another control plane).
		if err := f.syncer.Run(ctx); err != nil {
			fatal(err)
		}
	}()
	return func() { <-done }
}

// reload: a data plane follows its control plane by itself; SIGHUP has
// nothing to re-read.
func (f *fleetSource) reload() {}

func (f *fleetSource) status(s *api.Status) {
	st := f.syncer.Status()
	s.Fleet = &st
}

func (f *fleetSource) readOnly() *api.Error {
	e := &fleet.ReadOnlyError{ControlPlane: f.url}
	return &api.Error{Code: api.CodeForbidden, Message: e.Error(), Hint: e.Hint()}
}

// withHint puts the hint of an error in err's chain (bundle's key errors
// have one) into the message stoad prints when it refuses to start.
func withHint(err error) error {
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		return fmt.Errorf("%w; %s", err, h.Hint())
	}
	return err
}
