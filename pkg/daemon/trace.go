package daemon

import (
	"errors"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/telemetry/tracing"
)

// Spans of changes (docs/tracing.md): a change — apply, delete, rollback,
// a GitOps sync, a bundle — is a span "stoa.{action}" with a child per
// phase of the pipeline (plan, validate, prepare with one child per
// runtime, commit, swap). The caller's traceparent on the LocalAPI request
// is continued under the Gateway's accept policy; the span records what
// changed and who asked (its kind, never its token or name).

// tracer is the daemon's one Tracer; nil (off) without the default
// runtimes (tests that inject their own, a control plane).
func (d *Daemon) tracer() *tracing.Tracer {
	if d.dp == nil || d.dp.tracing == nil {
		return nil
	}
	return d.dp.tracing.Tracer
}

// Attributes of change spans.
const (
	attrActorKind     = "stoa.actor.kind"
	attrAction        = "stoa.action"
	attrCreates       = "stoa.changes.create"
	attrUpdates       = "stoa.changes.update"
	attrDeletes       = "stoa.changes.delete"
	attrCreated       = "stoa.revision.created"
	attrRollbackTo    = "stoa.rollback.to"
	attrRuntime       = "stoa.runtime"
	errorTypeInternal = "internal"
)

// changeTrace is a change's span and the phase running under it.
type changeTrace struct {
	sp    tracing.Span
	phase tracing.Span
}

// startChange begins c's span.
func (d *Daemon) startChange(c *change) *changeTrace {
	ct := &changeTrace{sp: d.tracer().Start(c.trace, "stoa."+c.action, tracing.KindInternal)}
	if ct.sp.Recording() {
		ct.sp.SetString(attrAction, c.action)
		ct.sp.SetString(attrActorKind, c.actorKind)
		ct.sp.SetBool(tracing.AttrDryRun, c.dryRun)
		if c.rollbackTo >= 0 && c.action == "rollback" {
			ct.sp.SetInt(attrRollbackTo, c.rollbackTo)
		}
	}
	return ct
}

// next ends the running phase and begins the one called name.
func (ct *changeTrace) next(name string) {
	ct.phase.End()
	ct.phase = tracing.Span{}
	if ct.sp.Recording() {
		ct.phase = ct.sp.StartChild(name, tracing.KindInternal)
	}
}

// end records how the change ended (on the phase that failed, too) and
// ends both spans.
func (ct *changeTrace) end(resp *api.ApplyResponse, err error) {
	if ct.sp.Recording() {
		if err != nil {
			typ := errorTypeInternal
			var ae *api.Error
			if errors.As(err, &ae) && ae.Code != "" {
				typ = ae.Code
			}
			ct.phase.SetError(typ, err.Error())
			ct.sp.SetError(typ, err.Error())
		}
		if resp != nil {
			ct.sp.SetInt(tracing.AttrRevision, resp.Revision)
			ct.sp.SetBool(attrCreated, resp.Created)
			s := resp.Summary
			ct.sp.SetInt(tracing.AttrChanges, int64(s.Create+s.Update+s.Delete))
			ct.sp.SetInt(attrCreates, int64(s.Create))
			ct.sp.SetInt(attrUpdates, int64(s.Update))
			ct.sp.SetInt(attrDeletes, int64(s.Delete))
		}
	}
	ct.phase.End()
	ct.sp.End()
}
