package cli

import (
	"fmt"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// rollsBack makes the fake answer rollbacks to revision 2 (or the one
// before the current): billing-api on its old upstream, the ToolSet gone.
func rollsBack(t *testing.T, fa *clitest.FakeAPI) {
	fa.RollbackFunc = func(req *api.RollbackRequest) (*api.ApplyResponse, error) {
		fa.Lock()
		live, rev := fa.LiveObjects, fa.LiveRevision
		fa.Unlock()
		if req.IfRevision != 0 && req.IfRevision != rev {
			return nil, errConflict
		}
		var changes []plan.Change
		for _, o := range live {
			switch {
			case req.ToEmpty:
				changes = append([]plan.Change{{Op: plan.Delete, Ref: o.Ref(), Before: o}}, changes...)
			case req.Revision != 0 && req.Revision != 2:
				return nil, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("revision %d not found", req.Revision), Hint: "list revisions with: stoa history"}
			case o.Kind == spec.KindTool && o.Metadata.Name == "billing-api":
				old := spec.Clone(o)
				old.Spec.(*spec.ToolSpec).Upstream = "http://127.0.0.1:9001/billing-v1"
				changes = append(changes, plan.Change{Op: plan.Update, Ref: o.Ref(), Before: o, After: old})
			case o.Kind == spec.KindToolSet:
				changes = append(changes, plan.Change{Op: plan.Delete, Ref: o.Ref(), Before: o})
			}
		}
		resp := &api.ApplyResponse{Changes: changes, Summary: plan.Summarize(changes), Revision: rev, DryRun: req.DryRun}
		if !req.DryRun {
			resp.Revision, resp.Created = rev+1, true
		}
		if !req.WithObjects {
			resp.Changes = changesRefsOnly(changes, false)
		}
		return resp, nil
	}
}

func rollbackCases() []cmdCase {
	preview := "Rollback({Revision:0 DryRun:true WithObjects:true ToEmpty:false IfRevision:0 Force:false})"
	return []cmdCase{
		{name: "dry run", args: []string{"2", "--dry-run"}, setup: rollsBack, formats: formats(shapeObject),
			out:    []string{"~ update Tool/acme/billing-api", "+   upstream: http://127.0.0.1:9001/billing-v1", "- delete ToolSet/acme/acme-tools"},
			errOut: []string{"dry run: rolling back from revision 3 to 2 would make 0 to create, 1 to update, 1 to delete; nothing changed"}},
		{name: "previous revision, --yes", args: []string{"--yes"}, setup: rollsBack,
			out:    []string{"Tool/acme/billing-api updated", "ToolSet/acme/acme-tools deleted"},
			errOut: []string{"revision 4: rolled back to revision 2 (0 created, 1 updated, 1 deleted)"},
			calls:  []string{preview, "Rollback({Revision:0 DryRun:false WithObjects:false ToEmpty:false IfRevision:3 Force:false})"}},
		{name: "--yes as json", args: []string{"2", "--yes", "--force", "-o", "json"}, setup: rollsBack, out: []string{`"revision": 4`},
			calls: []string{"Rollback({Revision:2 DryRun:true WithObjects:true ToEmpty:false IfRevision:0 Force:true})",
				"Rollback({Revision:2 DryRun:false WithObjects:false ToEmpty:false IfRevision:3 Force:true})"}},
		{name: "confirmed on a terminal", args: []string{"2"}, setup: rollsBack, tty: true, stdin: "yes\n",
			errOut: []string{"Roll back from revision 3 to revision 2 (0 to create, 1 to update, 1 to delete)? [y/N]"}, out: []string{"updated"}},
		{name: "declined on a terminal", args: []string{"2"}, setup: rollsBack, tty: true, stdin: "\n", code: ExitFailure,
			errOut: []string{"cancelled: nothing changed"}, calls: []string{"Rollback({Revision:2 DryRun:true WithObjects:true ToEmpty:false IfRevision:0 Force:false})"}},
		{name: "no terminal", args: []string{}, setup: rollsBack, code: ExitFailure,
			errOut: []string{"hint: review it with: stoa rollback 2 --dry-run, then run: stoa rollback 2 --yes"}, calls: []string{preview}},
		{name: "to the empty revision", args: []string{"0", "--dry-run"}, setup: rollsBack,
			errOut: []string{"WARNING: revision 0 is empty: this deletes all 12 live objects"}},
		{name: "nothing to roll back", args: []string{"2"}, setup: func(t *testing.T, fa *clitest.FakeAPI) {
			fa.RollbackFunc = func(req *api.RollbackRequest) (*api.ApplyResponse, error) {
				return &api.ApplyResponse{Changes: []plan.Change{}, Summary: plan.Summary{Unchanged: 12}, Revision: 3, DryRun: true}, nil
			}
		}, errOut: []string{"nothing to roll back: revision 3 already has the objects of revision 2"}},
		{name: "unknown revision", args: []string{"9", "--dry-run"}, setup: rollsBack, code: ExitFailure,
			errOut: []string{"stoa: revision 9 not found", "hint: list revisions with: stoa history"}},
		{name: "live revision moved", args: []string{"2", "--yes"}, setup: func(t *testing.T, fa *clitest.FakeAPI) {
			rollsBack(t, fa)
			preview := fa.RollbackFunc
			fa.RollbackFunc = func(req *api.RollbackRequest) (*api.ApplyResponse, error) {
				r, err := preview(req)
				fa.LiveRevision = 9
				return r, err
			}
		}, code: ExitFailure, errOut: []string{"the live revision changed"}},
		{name: "unreachable", args: []string{"2", "--dry-run"}, fail: failAll("Rollback", errUnreachable), code: ExitUnreachable},
		{name: "forbidden", args: []string{"2", "--dry-run"}, fail: failAll("Rollback", errDenied), code: ExitForbidden},
		{name: "not a number", args: []string{"two"}, code: ExitFailure, flagErr: true, errOut: []string{`revision "two": want a revision number`}},
		{name: "two revisions", args: []string{"1", "2"}, code: ExitFailure, flagErr: true, errOut: []string{"accepts at most 1 arg"}},
		{name: "negative", args: []string{"-1"}, code: ExitFailure, flagErr: true},
	}
}

func historyCases() []cmdCase {
	return []cmdCase{
		{name: "list", formats: formats(shapeList), out: []string{"REVISION", "3*", "alice (uid 1000)", "+1 ~0 -0", "initial"},
			calls: []string{"Revisions(50)"}},
		{name: "one revision", args: []string{"3"}, formats: formats(shapeObject), out: []string{"revision 3", "apply by alice (uid 1000)", `"initial"`, "+ create Tenant/initech"},
			calls: []string{"Revision(3)"}},
		{name: "limit", args: []string{"--limit", "1"}, notOut: []string{"bob"}, calls: []string{"Revisions(1)"}},
		{name: "none yet", setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.RevisionList = nil },
			errOut: []string{"no revisions yet; apply specs with: stoa apply -f DIR"}},
		{name: "unknown revision", args: []string{"9"}, code: ExitFailure, errOut: []string{"stoa: revision 9 not found"}},
		{name: "unreachable", fail: failAll("Revisions", errUnreachable), code: ExitUnreachable, errOut: []string{"hint: is stoad running?"}},
		{name: "forbidden", args: []string{"3"}, fail: failAll("Revision", errForbidden), code: ExitForbidden},
		{name: "not a number", args: []string{"x"}, code: ExitFailure, flagErr: true, errOut: []string{`revision "x": want a positive number`}},
		{name: "zero", args: []string{"0"}, code: ExitFailure, flagErr: true, errOut: []string{"want a positive number"}},
		{name: "limit not a number", args: []string{"--limit", "many"}, code: ExitFailure, flagErr: true, errOut: []string{`invalid argument "many"`}},
	}
}
