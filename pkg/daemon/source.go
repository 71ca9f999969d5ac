package daemon

import (
	"context"
	"fmt"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// A read-only stoad takes its configuration from signed bundles — a
// control plane's (--join, source_fleet.go) or a file's (--bundle,
// source_file.go) — never from the LocalAPI. Each verified revision goes
// through the pipeline an apply takes (plan → validate → prepare every
// runtime → commit → swap), recorded under the bundle's own revision
// number, so `stoa history`, `get` and `status` show what is served.

// configSource is where a read-only stoad's configuration comes from.
type configSource interface {
	// start serves what is already known (the last good bundle on disk)
	// before the LocalAPI reports ready, then follows the source until
	// ctx is done; it returns when everything it started has stopped. A
	// configuration error that makes following impossible is sent to
	// fatal.
	start(ctx context.Context, fatal func(error)) (wait func())
	// reload re-reads the source now (SIGHUP).
	reload()
	// status fills in where the configuration comes from.
	status(s *api.Status)
	// readOnly is the LocalAPI's answer to a change.
	readOnly() *api.Error
}

// openSource builds the configured source (nil: stoad takes applies).
func (d *Daemon) openSource() error {
	sc := &d.cfg.Source
	var err error
	switch {
	case sc.Join != "":
		d.source, err = newFleetSource(d, sc)
	case sc.Bundle != "":
		d.source, err = newFileSource(d, sc)
	}
	return err
}

// startSource starts the source, if any; the returned function stops it
// and waits.
func (d *Daemon) startSource(ctx context.Context, errc chan<- error) (stop func()) {
	if d.source == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	wait := d.source.start(ctx, func(err error) {
		select {
		case errc <- err:
		case <-ctx.Done():
		}
	})
	return func() {
		cancel()
		wait()
	}
}

// reloadSource re-reads the source on SIGHUP.
func (d *Daemon) reloadSource() {
	if d.source != nil {
		d.source.reload()
	}
}

// sourceStatus adds the source to `stoa status`.
func (d *Daemon) sourceStatus(s *api.Status) {
	if d.source != nil {
		s.Role = RoleDataPlane
		d.source.status(s)
	}
}

// readOnlyGuard refuses a change over the LocalAPI on a stoad whose
// configuration comes from signed bundles: the next bundle would undo it,
// and its revision number would be taken from the bundles'. Dry runs are
// refused too: a preview of a change that cannot be made misleads (stoa
// delete and rollback preview before they ask).
func (d *Daemon) readOnlyGuard() error {
	if d.source == nil {
		return nil
	}
	return d.source.readOnly()
}

// applyBundle makes a verified bundle's objects live as revision rev,
// through the apply pipeline (every runtime prepared before anything is
// committed; nothing changes on failure). Receiving the live revision
// again changes nothing; an older one is refused.
func (d *Daemon) applyBundle(rev int64, objs []*spec.Object, actor, message string) error {
	_, err := d.commit(change{
		action: "sync", actor: actor, message: message, actorKind: "bundle",
		desired: objs, stored: true, revision: rev,
		opts: plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }},
	})
	return err
}

// checkPinned refuses to record c.revision when it does not move the live
// revision forward: older than live, or live with other objects.
func (c *change) checkPinned(live int64, sum plan.Summary) error {
	switch {
	case c.revision == 0 || c.revision > live:
		return nil
	case c.revision < live:
		return apiError(api.CodeConflict, fmt.Sprintf("revision %d is older than the live revision %d; nothing was changed", c.revision, live),
			"the state directory holds a newer revision than the bundle: serve a newer bundle, or, if the state directory was a standalone stoad's, start on a fresh --state-dir")
	case !sum.Empty():
		return apiError(api.CodeConflict, fmt.Sprintf("revision %d is live with other objects than the bundle's; nothing was changed", c.revision),
			"the state directory was written by another source; start the data plane on a fresh --state-dir")
	}
	return nil
}
