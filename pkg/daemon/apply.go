package daemon

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// bigApply is the number of changes after which memory is returned to the
// OS right away.
const bigApply = 1000

// releaseMemorySoon returns memory to the OS a little after a large
// request: it leaves tens of MB of garbage (decoded objects, and after a
// commit the previous revision's runtimes) that Go would otherwise hand
// back over minutes. It waits so the forced collection does not slow the
// answer to that request, and several requests share one collection.
func (d *Daemon) releaseMemorySoon() {
	if d.memRelease.CompareAndSwap(false, true) {
		time.AfterFunc(2*time.Second, func() {
			d.memRelease.Store(false)
			debug.FreeOSMemory()
		})
	}
}

// change is one request to change the live state: desired objects (apply),
// deletions, or a rollback target, always with the same pipeline:
// plan → validate → prepare runtimes → commit → swap.
type change struct {
	action  string // apply, delete, rollback, gitops
	actor   string
	message string
	dryRun  bool

	desired []*spec.Object
	opts    plan.Options
	// stored marks desired objects that come from the store (rollback):
	// already defaulted and shared with the live state, so never mutated.
	stored bool
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
func (d *Daemon) commit(c change) (*api.ApplyResponse, error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()

	if diags := checkObjects(c.desired); diags.HasErrors() {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "specs are invalid", Diagnostics: diags}
	}
	if !c.stored {
		for _, o := range c.desired {
			spec.Default(o)
		}
	}
	cur := d.State()
	c.opts.LiveDigests = cur.Digests
	changes, sum := plan.Compute(cur.Objects, c.desired, c.opts)
	resp := &api.ApplyResponse{Changes: changes, Summary: sum, Revision: cur.Revision, DryRun: c.dryRun}
	if len(c.desired) >= bigApply {
		d.releaseMemorySoon()
	}
	if sum.Empty() {
		return resp, nil
	}
	next := plan.Apply(cur.Objects, changes)
	if diags := spec.Validate(next, spec.ValidateOptions{}); diags.HasErrors() {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "the resulting configuration would be invalid", Diagnostics: onlyErrors(diags),
			Hint: "fix the specs, or delete the objects that refer to what you remove"}
	}
	// Compile the new revision in every runtime before anything is stored:
	// a revision the data plane cannot serve is rejected as a whole.
	nextState := NewState(cur.Revision+1, next)
	swap, err := d.prepareRuntimes(nextState)
	if err != nil {
		return nil, &api.Error{Code: api.CodeInvalid, Message: "cannot load the new configuration: " + err.Error()}
	}
	if c.dryRun {
		return resp, nil
	}
	id, err := d.store.Commit(store.Revision{Time: time.Now().UTC(), Actor: c.actor, Action: c.action, Message: c.message}, changes)
	if err != nil {
		return nil, err
	}
	nextState.Revision = id
	nextState.Digests = cur.Digests.Next(changes)
	swap()
	d.state.Store(nextState)
	resp.Revision, resp.Created = id, true
	d.log.Info("revision committed", "revision", id, "action", c.action, "actor", c.actor,
		"create", sum.Create, "update", sum.Update, "delete", sum.Delete)
	evType := "config.applied"
	if c.action == "rollback" {
		evType = "config.rolledback"
	}
	d.Emit(evType, "", fmt.Sprintf("revision %d: %s by %s", id, sum, c.actor), map[string]any{
		"revision": id, "action": c.action, "actor": c.actor,
		"create": sum.Create, "update": sum.Update, "delete": sum.Delete,
	})
	return resp, nil
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

// Apply makes the request's objects live (or plans it, in dry-run).
func (d *Daemon) Apply(req *api.ApplyRequest, actor string) (*api.ApplyResponse, error) {
	return d.commit(change{
		action: "apply", actor: actor, message: req.Message, dryRun: req.DryRun,
		desired: req.Objects,
		opts:    plan.Options{Prune: req.Prune, PruneScope: pruneScope(req.Scope, req.Objects)},
	})
}

// Delete removes objects by reference.
func (d *Daemon) Delete(req *api.DeleteRequest, actor string) (*api.ApplyResponse, error) {
	cur := d.State()
	var missing []string
	for _, r := range req.Refs {
		if cur.Get(r) == nil {
			missing = append(missing, r.String())
		}
	}
	if len(missing) > 0 && !req.IgnoreNotFound {
		return nil, apiError(api.CodeNotFound, fmt.Sprintf("not found: %v", missing), "list what exists with: stoa get KIND -A")
	}
	return d.commit(change{action: "delete", actor: actor, dryRun: req.DryRun, opts: plan.Options{Deletes: req.Refs}})
}

// Rollback makes revision rev's objects live again, as a new revision.
func (d *Daemon) Rollback(req *api.RollbackRequest, actor string) (*api.ApplyResponse, error) {
	rev := req.Revision
	cur := d.State().Revision
	if rev == 0 {
		rev = cur - 1
	}
	if rev < 0 || rev >= cur {
		return nil, apiError(api.CodeBadRequest, fmt.Sprintf("cannot roll back to revision %d (current is %d)", rev, cur),
			"pick an earlier revision from: stoa history")
	}
	target, err := d.store.StateAt(rev)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apiError(api.CodeNotFound, err.Error(), "see: stoa history")
		}
		return nil, err
	}
	return d.commit(change{
		action: "rollback", actor: actor, dryRun: req.DryRun,
		message: fmt.Sprintf("rollback to revision %d", rev),
		desired: target, stored: true,
		opts: plan.Options{Prune: true, PruneScope: func(*spec.Object) bool { return true }},
	})
}
