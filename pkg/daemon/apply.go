package daemon

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/keys"
	"github.com/stoa-gateway/stoa/pkg/localapi"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// bigApply is the number of changes after which memory is returned to the
// OS right away.
const bigApply = 1000

// releaseMemoryDelay is how long after a large change memory is returned.
const releaseMemoryDelay = 2 * time.Second

// releaseMemorySoon returns memory to the OS a little after a large
// request: it leaves tens of MB of garbage (decoded objects, and after a
// commit the previous revision's runtimes) that Go would otherwise hand
// back only down to twice the live heap, over minutes. It is called when
// the change is done, and waits so the forced collection neither slows
// the answer (its encoding is garbage too) nor runs while the change
// still holds what it leaves; a later large change postpones it, so
// several share one collection and none runs in the middle of one.
func (d *Daemon) releaseMemorySoon() {
	d.memMu.Lock()
	defer d.memMu.Unlock()
	if d.memRelease == nil {
		d.memRelease = time.AfterFunc(releaseMemoryDelay, releaseMemory)
	} else {
		d.memRelease.Reset(releaseMemoryDelay)
	}
}

// releaseMemory collects twice and returns what is free to the OS. What
// a sync.Pool holds survives one collection (it becomes the pool's
// victim cache): after writing 10,000 objects, bbolt's pool of page
// buffers alone holds ~20 MB, which one FreeOSMemory would keep mapped
// until the runtime's next collection, and the OS would not see it back.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// change is one request to change the live state: desired objects (apply),
// deletions, or a rollback target, always with the same pipeline:
// plan → validate → prepare runtimes → commit → swap.
type change struct {
	action  string // apply, delete, rollback, gitops
	actor   string
	message string
	dryRun  bool
	// allow, when set, checks the plan for the caller's roles; an error
	// refuses the change whole (localapi.Caller.Allow).
	allow func([]plan.Change) error

	desired []*spec.Object
	opts    plan.Options
	// cascade extends opts.Deletes with their referrers; without it a
	// deletion that leaves references dangling is refused.
	cascade bool
	// ifRevision, when set, is the revision the caller previewed: the
	// change applies only if it is still live.
	ifRevision int64
	// stored marks desired objects that come from the store (rollback)
	// or a verified bundle: already defaulted and shared, so never
	// mutated.
	stored bool
	// revision, when set, is the id to record (a bundle's revision,
	// source.go); 0 takes the next one.
	revision int64

	// trace is what the caller said about its trace (nil: a new one);
	// actorKind how it connected (trace.go). rollbackTo is a rollback's
	// target revision.
	trace      *tracing.Incoming
	actorKind  string
	rollbackTo int64
}

// apiError is an error with a LocalAPI code (and diagnostics).
func apiError(code, msg, hint string) *api.Error {
	return &api.Error{Code: code, Message: msg, Hint: hint}
}

// checkObjects rejects objects that are not even well-formed envelopes and
// duplicates within the request; deeper checks come from spec.Validate.
func checkObjects(objs []*spec.Object) spec.Diagnostics {
	var diags spec.Diagnostics
	seen := make(map[spec.Ref]bool, len(objs))
	for _, o := range objs {
		ref := o.Ref()
		switch {
		case o.APIVersion != spec.APIVersion:
			diags = append(diags, &spec.Diagnostic{Object: &ref, Path: "apiVersion", Severity: "error",
				Message: fmt.Sprintf("unsupported apiVersion %q (supported: %s)", o.APIVersion, spec.APIVersion)})
		case o.Spec == nil:
			diags = append(diags, &spec.Diagnostic{Object: &ref, Path: "spec", Severity: "error", Message: "missing spec"})
		case seen[ref]:
			diags = append(diags, &spec.Diagnostic{Object: &ref, Path: "metadata.name", Severity: "error",
				Message: fmt.Sprintf("%s is defined more than once in this request", ref)})
		}
		seen[ref] = true
	}
	return diags
}

// commit runs a change through the pipeline. Holding applyMu makes changes
// strictly sequential, so the plan is computed against exactly the state it
// will replace.
func (d *Daemon) commit(c change) (resp *api.ApplyResponse, err error) {
	ct := d.startChange(&c)
	defer func() { ct.end(resp, err) }()
	d.applyMu.Lock()
	defer d.applyMu.Unlock()

	ct.next("plan")
	if diags := checkObjects(c.desired); diags.HasErrors() {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "specs are invalid", Diagnostics: diags}
	}
	if !c.stored {
		for _, o := range c.desired {
			spec.Default(o)
		}
	}
	cur := d.Live()
	if c.ifRevision != 0 && c.ifRevision != cur.Revision {
		return nil, apiError(api.CodeConflict,
			fmt.Sprintf("the live revision changed from %d to %d since the preview; nothing was changed", c.ifRevision, cur.Revision),
			"run the command again to see what it would change now")
	}
	if len(c.opts.Deletes) > 0 {
		if c.cascade {
			c.opts.Deletes = plan.Cascade(cur.Objects, c.opts.Deletes)
		} else if refs := plan.Referrers(cur.Objects, c.opts.Deletes); len(refs) > 0 {
			return nil, referrersError(refs)
		}
	}
	c.opts.LiveDigests = cur.Digests
	changes, sum := plan.Compute(cur.Objects, c.desired, c.opts)
	if c.allow != nil {
		// Before anything is validated or prepared: a refusal must not
		// depend on (or reveal) what another tenant's objects hold.
		if err := c.allow(changes); err != nil {
			return nil, err
		}
	}
	resp = &api.ApplyResponse{Changes: changes, Summary: sum, Revision: cur.Revision, DryRun: c.dryRun}
	if c.garbage(cur, sum) >= bigApply {
		// When the change is done, applied, refused or previewed: a
		// collection in the middle of it would find most of it live.
		defer d.releaseMemorySoon()
	}
	if err := c.checkPinned(cur.Revision, sum); err != nil {
		return nil, err
	}
	if sum.Empty() && c.revision <= cur.Revision {
		return resp, nil
	}
	ct.next("validate")
	next := plan.Apply(cur.Objects, changes)
	if diags := validateNext(cur.Objects, next, changes); diags.HasErrors() {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "the resulting configuration would be invalid", Diagnostics: onlyErrors(diags),
			Hint: "fix the specs, or delete the objects that refer to what you remove"}
	}
	// Compile the new revision in every runtime before anything is stored:
	// a revision the data plane cannot serve is rejected as a whole.
	ct.next("prepare")
	nextState := state.New(max(cur.Revision+1, c.revision), next)
	// Meanwhile, each changed object's canonical encoding, once: the store
	// writes it and the live digests are taken from it. Both only read
	// the objects.
	var encErr error
	encoded := make(chan struct{})
	if c.dryRun {
		close(encoded)
	} else {
		go func() {
			defer close(encoded)
			encErr = plan.EncodeChanges(changes)
		}()
	}
	swap, err := d.prepareRuntimes(nextState, &ct.phase)
	<-encoded
	if err != nil {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "cannot load the new configuration: " + err.Error()}
	}
	if c.dryRun {
		return resp, nil
	}
	if encErr != nil {
		return nil, apiError(api.CodeInvalid, "cannot encode the new configuration: "+encErr.Error(), "")
	}
	// The revision, its event, consumer identities and the keys revoked
	// with deleted consumers are one transaction: a crash leaves all or
	// none of them.
	ct.next("commit")
	now := time.Now().UTC()
	// Not the request's context: a commit is not abandoned halfway because
	// its client went away.
	ctx := context.Background()
	var (
		fx keys.Effects
		id int64
	)
	err = d.store.Update(ctx, func(tx store.Tx) error {
		var err error
		id, err = tx.Revisions().Commit(ctx, cur.Revision, store.Revision{ID: c.revision, Time: now, Actor: c.actor, Action: c.action, Message: c.message}, changes)
		if err != nil {
			return err
		}
		evType := "config.applied"
		if c.action == "rollback" {
			evType = "config.rolledback"
		}
		e, err := tx.Events().Append(ctx, api.Event{Time: now, Type: evType, Message: fmt.Sprintf("revision %d: %s by %s", id, sum, c.actor),
			Data: map[string]any{"revision": id, "action": c.action, "actor": c.actor,
				"create": sum.Create, "update": sum.Update, "delete": sum.Delete}})
		if err != nil {
			return err
		}
		fx.Events = append(fx.Events, e)
		return keys.Lifecycle(ctx, tx, id, c.actor, changes, now, &fx)
	})
	if errors.Is(err, store.ErrConflict) {
		// Another writer of the store (a second replica) committed first.
		return nil, apiError(api.CodeConflict, fmt.Sprintf("revision %d is no longer live: another change was committed meanwhile; nothing was changed", cur.Revision),
			"run the command again to plan against the live state")
	}
	if err != nil {
		return nil, fmt.Errorf("commit revision: %w", err)
	}
	if ks := d.keyService(); fx.Revoked > 0 && ks != nil {
		if err := ks.Refresh(); err != nil {
			d.log.Error("rebuild the key index after revoking keys", "revision", id, "err", err)
		}
	}
	ct.next("swap")
	nextState.Revision = id
	nextState.Digests = cur.Digests.Next(changes)
	swap()
	d.live.Store(nextState)
	resp.Revision, resp.Created = id, true
	d.log.Info("revision committed", "revision", id, "action", c.action, "actor", c.actor,
		"create", sum.Create, "update", sum.Update, "delete", sum.Delete, "keysRevoked", fx.Revoked)
	for _, e := range fx.Events {
		d.events.Publish(e)
	}
	return resp, nil
}

// garbage estimates how many decoded objects the change leaves behind:
// every desired object of a request (decoded for it, kept only if it
// changed), or, for objects handed over already decoded (a bundle, a
// rollback), those that are not the live objects themselves, plus what
// the change replaces. A data plane's one-object delta leaves one: no
// forced collection for it.
func (c *change) garbage(cur *state.Revision, sum plan.Summary) int {
	n := sum.Update + sum.Delete
	if !c.stored {
		return n + len(c.desired)
	}
	for _, o := range c.desired {
		if cur.Get(o.Ref()) != o {
			n++
		}
	}
	return n
}

// referrersError refuses a deletion that would leave references dangling,
// naming every referrer and its field (also as diagnostics, for clients
// that want them structured).
func referrersError(refs []plan.Reference) *api.Error {
	e := apiError(api.CodeConflict, plan.ReferrersMessage(refs),
		"delete or change those objects first, or delete them too with --cascade (add --dry-run to see everything it would delete)")
	for _, r := range refs {
		from := r.From
		e.Diagnostics = append(e.Diagnostics, &spec.Diagnostic{Object: &from, Path: r.Path, Severity: spec.SeverityError,
			Message: "refers to " + r.To.String()})
	}
	return e
}

func onlyErrors(diags spec.Diagnostics) spec.Diagnostics { return diags.OnlyErrors() }

// pruneScope turns the request's scope into the plan's predicate.
func pruneScope(sc api.PruneScope, desired []*spec.Object) func(*spec.Object) bool {
	ns := map[string]bool{}
	for _, n := range sc.Namespaces {
		ns[n] = true
	}
	return func(o *spec.Object) bool {
		for k, v := range sc.Selector {
			if o.Metadata.Labels[k] != v {
				return false
			}
		}
		if sc.All {
			return true
		}
		if !o.Kind.Namespaced() {
			return sc.ClusterScoped
		}
		return ns[o.Metadata.Namespace]
	}
}

// Apply makes the request's objects live (or plans it, in dry-run), as a
// LocalAPI peer asks: refused in GitOps mode unless forced.
func (d *Daemon) Apply(req *api.ApplyRequest, c localapi.Caller) (*api.ApplyResponse, error) {
	if err := d.gitopsGuard(req.Force, req.DryRun); err != nil {
		return nil, err
	}
	return d.apply(req, c)
}

// apply makes the request's objects live; GitOps applies its directory
// through it.
func (d *Daemon) apply(req *api.ApplyRequest, c localapi.Caller) (*api.ApplyResponse, error) {
	return d.commit(change{
		action: "apply", actor: c.Actor, allow: c.Allow, message: gitopsForced(d, req.Force, req.Message), dryRun: req.DryRun,
		trace: c.Trace, actorKind: c.ActorKind,
		desired: req.Objects,
		opts:    plan.Options{Prune: req.Prune, PruneScope: pruneScope(req.Scope, req.Objects)},
	})
}

// Delete removes objects by reference (refused in GitOps mode unless
// forced).
func (d *Daemon) Delete(req *api.DeleteRequest, c localapi.Caller) (*api.ApplyResponse, error) {
	if err := d.gitopsGuard(req.Force, req.DryRun); err != nil {
		return nil, err
	}
	cur := d.Live()
	var missing []string
	for _, r := range req.Refs {
		if cur.Get(r) == nil {
			missing = append(missing, r.String())
		}
	}
	if len(missing) > 0 && !req.IgnoreNotFound {
		return nil, apiError(api.CodeNotFound, fmt.Sprintf("not found: %v", missing), "list what exists with: stoa get KIND -A")
	}
	return d.commit(change{action: "delete", actor: c.Actor, allow: c.Allow, dryRun: req.DryRun, message: gitopsForced(d, req.Force, ""), opts: plan.Options{Deletes: req.Refs},
		cascade: req.Cascade, ifRevision: req.IfRevision, trace: c.Trace, actorKind: c.ActorKind})
}

// Rollback makes revision rev's objects live again, as a new revision
// (refused in GitOps mode unless forced).
func (d *Daemon) Rollback(req *api.RollbackRequest, c localapi.Caller) (*api.ApplyResponse, error) {
	if err := d.gitopsGuard(req.Force, req.DryRun); err != nil {
		return nil, err
	}
	rev := req.Revision
	cur := d.Live().Revision
	switch {
	case req.ToEmpty && rev != 0:
		return nil, apiError(api.CodeBadRequest, fmt.Sprintf("roll back: toEmpty asks for revision 0, not %d", rev), "")
	case cur == 0:
		return nil, apiError(api.CodeBadRequest, "nothing to roll back: no revision has been applied yet", "apply specs with: stoa apply -f DIR")
	case rev == 0 && !req.ToEmpty && cur == 1:
		// The revision before the first is the empty state: reaching it
		// deletes everything, which must never happen by default.
		return nil, apiError(api.CodeBadRequest,
			fmt.Sprintf("revision 1 is the first revision: rolling back from it would delete all %d objects", len(d.Live().Objects)),
			"to delete everything, ask for the empty revision 0 explicitly: stoa rollback 0 (preview it with --dry-run)")
	case rev == 0 && !req.ToEmpty:
		rev = cur - 1
	}
	if rev < 0 || rev >= cur {
		return nil, apiError(api.CodeBadRequest, fmt.Sprintf("cannot roll back to revision %d (current is %d)", rev, cur),
			"pick an earlier revision from: stoa history")
	}
	target, err := store.StateAt(context.Background(), d.store, rev)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apiError(api.CodeNotFound, err.Error(), "see: stoa history")
		}
		return nil, err
	}
	msg := fmt.Sprintf("rollback to revision %d", rev)
	if rev == 0 {
		msg += " (empty: every object deleted)"
	}
	return d.commit(change{
		action: "rollback", actor: c.Actor, allow: c.Allow, dryRun: req.DryRun, message: gitopsForced(d, req.Force, msg),
		desired: target, stored: true, ifRevision: req.IfRevision,
		opts:  plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }},
		trace: c.Trace, actorKind: c.ActorKind, rollbackTo: rev,
	})
}
