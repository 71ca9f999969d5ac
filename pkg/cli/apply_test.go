package cli

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

var badDir = filepath.Join("..", "..", "examples", "bad")

// planApplies makes the fake plan an apply as stoad does: the request's
// objects, defaulted, against the live ones, pruning within its scope.
func planApplies(t *testing.T, fa *clitest.FakeAPI) {
	fa.ApplyFunc = func(req *api.ApplyRequest, raw json.RawMessage) (*api.ApplyResponse, error) {
		var desired []*spec.Object
		if err := json.Unmarshal(raw, &desired); err != nil {
			t.Errorf("apply sent objects that do not decode: %v", err)
			return nil, err
		}
		for _, o := range desired {
			spec.Default(o)
		}
		scope := func(o *spec.Object) bool {
			ns := o.Metadata.Namespace
			if o.Kind == spec.KindTenant {
				ns = o.Metadata.Name
			}
			for k, v := range req.Scope.Selector {
				if o.Metadata.Labels[k] != v {
					return false
				}
			}
			return req.Scope.All || slices.Contains(req.Scope.Namespaces, ns)
		}
		fa.Lock()
		changes, sum := plan.Compute(fa.LiveObjects, desired, plan.Options{Prune: req.Prune, PruneScope: scope})
		rev := fa.LiveRevision
		fa.Unlock()
		resp := &api.ApplyResponse{Changes: changes, Summary: sum, Revision: rev, DryRun: req.DryRun}
		if !req.DryRun && !sum.Empty() {
			resp.Revision, resp.Created = rev+1, true
		}
		if !req.WithObjects {
			resp.Changes = changesRefsOnly(changes, false)
		}
		return resp, nil
	}
}

// liveDrift changes the live billing-api's upstream and removes the live
// globex Plan, so the quickstart files update one object and create one.
func liveDrift(t *testing.T, fa *clitest.FakeAPI) {
	planApplies(t, fa)
	var live []*spec.Object
	for _, o := range fa.LiveObjects {
		switch {
		case o.Kind == spec.KindTool && o.Metadata.Name == "billing-api":
			c := spec.Clone(o)
			c.Spec.(*spec.ToolSpec).Upstream = "http://127.0.0.1:9001/billing-old"
			live = append(live, c)
		case o.Kind == spec.KindPlan && o.Metadata.Namespace == "globex":
		default:
			live = append(live, o)
		}
	}
	fa.LiveObjects = live
}

// withExtra adds a live Tool the quickstart files lack, in tenant acme.
func withExtra(t *testing.T, fa *clitest.FakeAPI) {
	planApplies(t, fa)
	extra := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool,
		Metadata: spec.Metadata{Name: "legacy-api", Namespace: "acme", Labels: map[string]string{"team": "finance"}},
		Spec:     &spec.ToolSpec{Upstream: "http://127.0.0.1:9001/legacy"}}
	spec.Default(extra)
	fa.LiveObjects = append(fa.LiveObjects, extra)
}

// rejected is stoad refusing the specs with a diagnostic on one object.
var rejected = &api.Error{Code: api.CodeInvalid, Message: "1 invalid object", Diagnostics: spec.Diagnostics{{
	Object: &spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "billing-api"}, Path: "spec.upstream",
	Message: "upstream host is not allowed", Hint: "use a host from the Gateway's upstream allow-list", Severity: "error"}}}

func validateCases() []cmdCase {
	return []cmdCase{
		{name: "valid", args: []string{"-f", quickstartDir}, formats: formats(shapeObject), calls: []string{},
			out: []string{"valid: 12 objects (2 Tenant, 3 Tool, 1 ToolSet, 2 Plan, 2 Consumer, 2 Subscription)"}},
		{name: "stdin", args: []string{"-f", "-"}, stdin: "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: initech\nspec: {}\n",
			out: []string{"valid: 1 object (1 Tenant)"}},
		{name: "invalid", args: []string{"-f", quickstartDir, "-f", badDir}, code: ExitInvalid,
			errOut: []string{"tool.yaml:10:3", "upstrem", "errors in 1 file"}},
		{name: "invalid as json", args: []string{"-f", badDir, "-o", "json"}, code: ExitInvalid, out: []string{`"valid": false`, `"line": 10`}},
		{name: "no files", code: ExitFailure, flagErr: true, errOut: []string{"no specs given: pass -f FILE|DIR|-"}},
		{name: "stray argument", args: []string{"-f", quickstartDir, "extra"}, code: ExitFailure, flagErr: true, errOut: []string{"unknown command"}},
		{name: "missing file", args: []string{"-f", "does-not-exist.yaml"}, code: ExitInvalid, errOut: []string{"does-not-exist.yaml"}},
	}
}

func diffCases() []cmdCase {
	dryRun := "ApplyEncoded({Objects:[] DryRun:true Prune:false Scope:{All:false Namespaces:[acme globex] ClusterScoped:false Selector:map[]} Message: WithObjects:true Force:false}, [12 objects])"
	return []cmdCase{
		{name: "changes", args: []string{"-f", quickstartDir}, setup: liveDrift, code: ExitChanges, formats: formats(shapeObject),
			out:    []string{"Tool/acme/billing-api", "-   upstream: http://127.0.0.1:9001/billing-old", "+   upstream: http://127.0.0.1:9001/billing\n", "Plan/globex/free"},
			errOut: []string{"Plan: 1 to create, 1 to update"}},
		{name: "no changes", args: []string{"-f", quickstartDir}, errOut: []string{"no changes (revision 3)"},
			calls: []string{"Digests()"}},
		{name: "brief", args: []string{"-f", quickstartDir, "--brief"}, setup: liveDrift, code: ExitChanges,
			notOut: []string{"upstream:"}, out: []string{"Tool/acme/billing-api"}},
		{name: "prune within the files' tenants", args: []string{"-f", quickstartDir, "--prune"}, setup: withExtra, code: ExitChanges,
			out: []string{"Tool/acme/legacy-api"}, errOut: []string{"1 to delete"}},
		{name: "unreachable", args: []string{"-f", quickstartDir}, fail: map[string]error{"Digests": errUnreachable, "ApplyEncoded": errUnreachable},
			code: ExitUnreachable, errOut: []string{"cannot reach stoad at /run/stoa/fake.sock", "hint: is stoad running?"}},
		{name: "rejected by stoad", args: []string{"-f", quickstartDir}, setup: liveDrift, fail: map[string]error{"ApplyEncoded": rejected},
			code: ExitInvalid, errOut: []string{"stoad rejected the specs", "acme.yaml:", "upstream host is not allowed"}},
		{name: "forbidden", args: []string{"-f", quickstartDir}, setup: liveDrift, fail: map[string]error{"ApplyEncoded": errDenied},
			code: ExitForbidden, errOut: []string{"hint: start stoad with --socket-group"}},
		{name: "invalid files", args: []string{"-f", badDir}, code: ExitInvalid, calls: []string{}},
		{name: "no files", code: ExitFailure, flagErr: true, errOut: []string{"no specs given"}},
		{name: "selector not an equality", args: []string{"-f", quickstartDir, "--prune", "-l", "team!=x"}, code: ExitFailure, flagErr: true,
			errOut: []string{"only key=value"}},
		{name: "dry-run is implied", args: []string{"-f", quickstartDir, "--dry-run"}, code: ExitFailure, flagErr: true, errOut: []string{"unknown flag: --dry-run"}},
		{name: "dry run request", args: []string{"-f", quickstartDir}, setup: liveDrift, code: ExitChanges, calls: []string{"Digests()", dryRun}},
		// One line per change needs no objects in the answer; JSON shows them.
		{name: "brief asks for no objects", args: []string{"-f", quickstartDir, "--brief"}, setup: liveDrift, code: ExitChanges,
			calls: []string{"Digests()", strings.Replace(dryRun, "WithObjects:true", "WithObjects:false", 1)}},
		{name: "brief as json still has the objects", args: []string{"-f", quickstartDir, "--brief", "-o", "json"}, setup: liveDrift, code: ExitChanges,
			out: []string{`"after": {`, `"upstream": "http://127.0.0.1:9001/billing-old"`}, calls: []string{"Digests()", dryRun}},
	}
}

func applyCases() []cmdCase {
	return []cmdCase{
		{name: "changes", args: []string{"-f", quickstartDir}, setup: liveDrift, formats: formats(shapeObject),
			out:    []string{"Tool/acme/billing-api updated", "Plan/globex/free created"},
			errOut: []string{"revision 4 applied: 1 created, 1 updated, 0 deleted, 10 unchanged"},
			calls:  []string{"Digests()", "ApplyEncoded({Objects:[] DryRun:false Prune:false Scope:{All:false Namespaces:[acme globex] ClusterScoped:false Selector:map[]} Message: WithObjects:false Force:false}, [12 objects])"}},
		{name: "unchanged is not sent", args: []string{"-f", quickstartDir}, errOut: []string{"no changes; revision 3 unchanged"}, calls: []string{"Digests()"}},
		{name: "dry run", args: []string{"-f", quickstartDir, "--dry-run"}, setup: liveDrift,
			out: []string{"~ update Tool/acme/billing-api", "+ create Plan/globex/free"}, errOut: []string{"dry run: 1 to create, 1 to update, 0 to delete; nothing changed (revision 3)"}},
		{name: "dry run asks for no objects", args: []string{"-f", quickstartDir, "--dry-run"}, setup: liveDrift,
			out:   []string{"~ update Tool/acme/billing-api"},
			calls: []string{"Digests()", "ApplyEncoded({Objects:[] DryRun:true Prune:false Scope:{All:false Namespaces:[acme globex] ClusterScoped:false Selector:map[]} Message: WithObjects:false Force:false}, [12 objects])"}},
		{name: "dry run as json has the objects", args: []string{"-f", quickstartDir, "--dry-run", "-o", "json"}, setup: liveDrift,
			out:   []string{`"after": {`},
			calls: []string{"Digests()", "ApplyEncoded({Objects:[] DryRun:true Prune:false Scope:{All:false Namespaces:[acme globex] ClusterScoped:false Selector:map[]} Message: WithObjects:true Force:false}, [12 objects])"}},
		{name: "message and force", args: []string{"-f", quickstartDir, "-m", "release 7", "--force", "--prune-all", "-l", "team=finance"}, setup: withExtra,
			out:   []string{"Tool/acme/legacy-api deleted"},
			calls: []string{"Digests()", "ApplyEncoded({Objects:[] DryRun:false Prune:true Scope:{All:true Namespaces:[acme globex] ClusterScoped:false Selector:map[team:finance]} Message:release 7 WithObjects:false Force:true}, [12 objects])"}},
		{name: "digests unavailable", args: []string{"-f", quickstartDir}, setup: liveDrift, fail: map[string]error{"Digests": errNotFound},
			out: []string{"Tool/acme/billing-api updated"}},
		{name: "unreachable", args: []string{"-f", quickstartDir}, fail: map[string]error{"Digests": errUnreachable, "ApplyEncoded": errUnreachable},
			code: ExitUnreachable, errOut: []string{"hint: is stoad running? start it with: stoad --socket /run/stoa/fake.sock"}},
		{name: "socket forbidden", args: []string{"-f", quickstartDir}, setup: liveDrift, fail: map[string]error{"ApplyEncoded": errForbidden},
			code: ExitForbidden, errOut: []string{"not allowed to use this socket /run/stoa/fake.sock (owner root (uid 0)"}},
		{name: "rejected by stoad", args: []string{"-f", quickstartDir}, setup: liveDrift, fail: map[string]error{"ApplyEncoded": rejected},
			code: ExitInvalid, errOut: []string{"upstream host is not allowed"}},
		{name: "rejected by stoad as json", args: []string{"-f", quickstartDir, "-o", "json"}, setup: liveDrift, fail: map[string]error{"ApplyEncoded": rejected},
			code: ExitInvalid, out: []string{`"valid": false`, `"message": "upstream host is not allowed"`}},
		{name: "conflict", args: []string{"-f", quickstartDir}, setup: liveDrift, fail: map[string]error{"ApplyEncoded": errConflict},
			code: ExitFailure, errOut: []string{"stoa: the live revision changed"}},
		{name: "shutting down", args: []string{"-f", quickstartDir}, setup: liveDrift, fail: map[string]error{"ApplyEncoded": errShutdown},
			code: ExitUnreachable},
		{name: "invalid files", args: []string{"-f", badDir}, code: ExitInvalid, calls: []string{}, errOut: []string{"2 errors in 1 file"}},
		{name: "no files", code: ExitFailure, flagErr: true, errOut: []string{"no specs given"}},
		{name: "bad selector", args: []string{"-f", quickstartDir, "--prune", "-l", "te am"}, code: ExitFailure, flagErr: true, errOut: []string{"not a label key"}},
		{name: "brief is diff's", args: []string{"-f", quickstartDir, "--brief"}, code: ExitFailure, flagErr: true, errOut: []string{"unknown flag: --brief"}},
	}
}
