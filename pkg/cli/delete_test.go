package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// changeDaemon is a fake stoad for delete and rollback: live revision 5
// holding a Tenant, two Tools and a ToolSet naming one of them. It
// computes referrers and cascades with pkg/plan, as stoad does, and
// records every request.
type changeDaemon struct {
	socket    string
	mu        sync.Mutex
	deletes   []api.DeleteRequest
	rollbacks []api.RollbackRequest
}

func fakeObj(kind spec.Kind, ns, name string, s spec.Spec) *spec.Object {
	return &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: s}
}

func newChangeDaemon(t *testing.T) *changeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "stoa-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &changeDaemon{socket: filepath.Join(dir, "s.sock")}
	ln, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	const live = 5
	objs := []*spec.Object{
		fakeObj(spec.KindTenant, "", "acme", &spec.TenantSpec{}),
		fakeObj(spec.KindTool, "acme", "billing-api", &spec.ToolSpec{Upstream: "http://127.0.0.1:9001/billing"}),
		fakeObj(spec.KindTool, "acme", "inventory-api", &spec.ToolSpec{Upstream: "http://127.0.0.1:9001/inventory"}),
		fakeObj(spec.KindToolSet, "acme", "acme-tools", &spec.ToolSetSpec{Tools: []string{"inventory-api"}}),
	}
	byRef := map[spec.Ref]*spec.Object{}
	for _, o := range objs {
		byRef[o.Ref()] = o
	}
	write := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, e *api.Error) { write(w, http.StatusConflict, api.ErrorBody{Error: e}) }
	answer := func(w http.ResponseWriter, changes []plan.Change, dryRun, withObjects bool) {
		resp := api.ApplyResponse{Changes: changes, Summary: plan.Summarize(changes), Revision: live, DryRun: dryRun}
		if !dryRun {
			resp.Revision, resp.Created = live+1, true
		}
		if !withObjects {
			resp.Changes = changesRefsOnly(changes, false)
		}
		write(w, http.StatusOK, resp)
	}
	stale := func(w http.ResponseWriter, ifRev int64) bool {
		if ifRev != 0 && ifRev != live {
			fail(w, &api.Error{Code: api.CodeConflict, Message: "the live revision changed"})
			return true
		}
		return false
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathDelete, func(w http.ResponseWriter, r *http.Request) {
		var req api.DeleteRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		d.mu.Lock()
		d.deletes = append(d.deletes, req)
		d.mu.Unlock()
		if stale(w, req.IfRevision) {
			return
		}
		refs := req.Refs
		if req.Cascade {
			refs = plan.Cascade(objs, refs)
		} else if rs := plan.Referrers(objs, refs); len(rs) > 0 {
			fail(w, &api.Error{Code: api.CodeConflict, Message: plan.ReferrersMessage(rs), Hint: "delete or change those objects first, or delete them too with --cascade"})
			return
		}
		var changes []plan.Change
		for _, ref := range refs {
			changes = append(changes, plan.Change{Op: plan.Delete, Ref: ref, Before: byRef[ref]})
		}
		answer(w, changes, req.DryRun, req.WithObjects)
	})
	mux.HandleFunc("POST "+api.PathRollback, func(w http.ResponseWriter, r *http.Request) {
		var req api.RollbackRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		d.mu.Lock()
		d.rollbacks = append(d.rollbacks, req)
		d.mu.Unlock()
		if stale(w, req.IfRevision) {
			return
		}
		var changes []plan.Change
		switch {
		case req.ToEmpty:
			for i := len(objs) - 1; i >= 0; i-- {
				changes = append(changes, plan.Change{Op: plan.Delete, Ref: objs[i].Ref(), Before: objs[i]})
			}
		case req.Revision == 0 || req.Revision == 4:
			// Revision 4 had billing-api on another upstream and no inventory-api.
			old := fakeObj(spec.KindTool, "acme", "billing-api", &spec.ToolSpec{Upstream: "http://127.0.0.1:9001/billing-v1"})
			changes = []plan.Change{
				{Op: plan.Update, Ref: old.Ref(), Before: objs[1], After: old},
				{Op: plan.Delete, Ref: objs[3].Ref(), Before: objs[3]},
				{Op: plan.Delete, Ref: objs[2].Ref(), Before: objs[2]},
			}
		}
		answer(w, changes, req.DryRun, req.WithObjects)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return d
}

// committed lists the requests that would have changed something.
func (d *changeDaemon) committed() (deletes []api.DeleteRequest, rollbacks []api.RollbackRequest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.deletes {
		if !r.DryRun {
			deletes = append(deletes, r)
		}
	}
	for _, r := range d.rollbacks {
		if !r.DryRun {
			rollbacks = append(rollbacks, r)
		}
	}
	return deletes, rollbacks
}

// requests lists every rollback request, previews included.
func (d *changeDaemon) requests() []api.RollbackRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]api.RollbackRequest(nil), d.rollbacks...)
}

type cliRun struct {
	code        int
	out, errOut string
}

// run runs stoa against the fake; a non-nil answer is typed on a terminal.
func (d *changeDaemon) run(answer *string, args ...string) cliRun {
	var out, errb bytes.Buffer
	io := &IOStreams{Out: &out, ErrOut: &errb, In: strings.NewReader("")}
	if answer != nil {
		io.In, io.InTTY = strings.NewReader(*answer), true
	}
	code := Run(context.Background(), append([]string{"--socket", d.socket}, args...), io)
	return cliRun{code, out.String(), errb.String()}
}

func mustHave(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func TestRollbackConfirms(t *testing.T) {
	t.Run("dry run prints the diff", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(nil, "rollback", "--dry-run")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.errOut)
		}
		mustHave(t, "stdout", r.out, "~ update Tool/acme/billing-api", "-   upstream: http://127.0.0.1:9001/billing\n",
			"+   upstream: http://127.0.0.1:9001/billing-v1", "- delete ToolSet/acme/acme-tools", "  - kind: ToolSet")
		mustHave(t, "stderr", r.errOut, "dry run: rolling back from revision 5 to 4 would make 0 to create, 1 to update, 2 to delete; nothing changed")
		if _, rb := d.committed(); len(rb) != 0 {
			t.Fatalf("a dry run committed: %+v", rb)
		}
	})
	t.Run("no terminal and no --yes refuses", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(nil, "rollback")
		if r.code != ExitFailure || r.out != "" {
			t.Fatalf("exit %d\n%s%s", r.code, r.out, r.errOut)
		}
		mustHave(t, "stderr", r.errOut, "stdin is not a terminal", "nothing changed",
			"hint: review it with: stoa rollback 4 --dry-run, then run: stoa rollback 4 --yes")
		if _, rb := d.committed(); len(rb) != 0 {
			t.Fatalf("committed without confirmation: %+v", rb)
		}
	})
	t.Run("--yes shows the diff and commits what was previewed", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(nil, "rollback", "--yes")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.errOut)
		}
		mustHave(t, "stderr", r.errOut, "~ update Tool/acme/billing-api", "revision 6: rolled back to revision 4 (0 created, 1 updated, 2 deleted)")
		mustHave(t, "stdout", r.out, "Tool/acme/billing-api updated", "ToolSet/acme/acme-tools deleted")
		_, rb := d.committed()
		if len(rb) != 1 || rb[0].IfRevision != 5 {
			t.Fatalf("commit: %+v", rb)
		}
	})
	for _, tc := range []struct {
		answer string
		commit bool
	}{{"y\n", true}, {"YES\n", true}, {"n\n", false}, {"\n", false}, {"", false}, {"yep\n", false}} {
		t.Run("terminal answers "+strings.TrimSpace(tc.answer), func(t *testing.T) {
			d := newChangeDaemon(t)
			r := d.run(ptr(tc.answer), "rollback", "4")
			mustHave(t, "stderr", r.errOut, "~ update Tool/acme/billing-api", "Roll back from revision 5 to revision 4 (0 to create, 1 to update, 2 to delete)? [y/N]")
			_, rb := d.committed()
			if tc.commit != (len(rb) == 1) || (tc.commit && r.code != 0) {
				t.Fatalf("answer %q: exit %d, commits %+v\n%s", tc.answer, r.code, rb, r.errOut)
			}
			if !tc.commit {
				mustHave(t, "stderr", r.errOut, "cancelled: nothing changed")
				if r.code != ExitFailure {
					t.Fatalf("cancel exit %d", r.code)
				}
			}
		})
	}
	t.Run("revision 0 is named and loudly confirmed", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(ptr("n\n"), "rollback", "0")
		mustHave(t, "stderr", r.errOut, "WARNING: revision 0 is empty: this deletes all 4 live objects",
			"Delete all 4 objects (roll back from revision 5 to the empty revision 0)? [y/N]", "- delete Tenant/acme")
		if rb := d.requests(); len(rb) != 1 || !rb[0].ToEmpty || rb[0].Revision != 0 {
			t.Fatalf("requests: %+v", rb)
		}
		r = d.run(nil, "rollback", "0", "--dry-run")
		mustHave(t, "stderr", r.errOut, "WARNING: revision 0 is empty")
	})
	t.Run("bad revision", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(nil, "rollback", "-1")
		if rb := d.requests(); r.code != ExitFailure || len(rb) != 0 {
			t.Fatalf("exit %d, requests %+v", r.code, rb)
		}
	})
}

func TestDeleteReferrersAndCascade(t *testing.T) {
	t.Run("refusal names each referrer and offers --cascade", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(nil, "delete", "tool", "inventory-api", "-n", "acme")
		if r.code != ExitFailure || r.out != "" {
			t.Fatalf("exit %d\n%s%s", r.code, r.out, r.errOut)
		}
		want := "stoa: delete Tool/acme/inventory-api: 1 object still refers to it\n  ToolSet/acme/acme-tools  spec.tools[0]\nhint: delete or change those objects first, or delete them too with --cascade\n"
		if r.errOut != want {
			t.Fatalf("stderr:\n%s\nwant:\n%s", r.errOut, want)
		}
		if strings.Contains(r.errOut, "define a") {
			t.Fatal("an apply hint on a delete")
		}
	})
	t.Run("--cascade --dry-run shows the diff in dependency order", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(nil, "delete", "tool", "inventory-api", "-n", "acme", "--cascade", "--dry-run")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.errOut)
		}
		set, tool := strings.Index(r.out, "- delete ToolSet/acme/acme-tools"), strings.Index(r.out, "- delete Tool/acme/inventory-api")
		if set < 0 || tool < set {
			t.Fatalf("the ToolSet must go first:\n%s", r.out)
		}
		mustHave(t, "stdout", r.out, "  - kind: ToolSet", "  -   upstream: http://127.0.0.1:9001/inventory")
		mustHave(t, "stderr", r.errOut, "dry run: would delete 2 objects; nothing changed (revision 5)")
	})
	t.Run("--cascade beyond the named objects needs a confirmation", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(nil, "delete", "tool", "inventory-api", "-n", "acme", "--cascade")
		mustHave(t, "stderr", r.errOut, "stdin is not a terminal",
			"stoa delete tool inventory-api -n acme --cascade --dry-run", "stoa delete tool inventory-api -n acme --cascade --yes")
		if del, _ := d.committed(); r.code != ExitFailure || len(del) != 0 {
			t.Fatalf("exit %d, commits %+v", r.code, del)
		}
		r = d.run(ptr("y\n"), "delete", "tool", "inventory-api", "-n", "acme", "--cascade")
		mustHave(t, "stderr", r.errOut, "- delete ToolSet/acme/acme-tools", "Delete 2 objects (1 of them because they refer to what you named)? [y/N]")
		mustHave(t, "stdout", r.out, "ToolSet/acme/acme-tools deleted\nTool/acme/inventory-api deleted\n")
		del, _ := d.committed()
		if r.code != 0 || len(del) != 1 || !del[0].Cascade || del[0].IfRevision != 5 {
			t.Fatalf("exit %d, commits %+v", r.code, del)
		}
	})
	t.Run("--cascade with nothing else to delete does not ask", func(t *testing.T) {
		d := newChangeDaemon(t)
		r := d.run(nil, "delete", "tool", "billing-api", "-n", "acme", "--cascade")
		if del, _ := d.committed(); r.code != 0 || len(del) != 1 {
			t.Fatalf("exit %d, commits %+v\n%s", r.code, del, r.errOut)
		}
		mustHave(t, "stdout", r.out, "Tool/acme/billing-api deleted")
	})
}

// cascades makes the fake answer deletes as stoad does: refused while
// other live objects refer to them, unless Cascade, and committed only at
// the revision previewed.
func cascades(t *testing.T, fa *clitest.FakeAPI) {
	fa.DeleteFunc = func(req *api.DeleteRequest) (*api.ApplyResponse, error) {
		fa.Lock()
		live, rev := fa.LiveObjects, fa.LiveRevision
		fa.Unlock()
		if req.IfRevision != 0 && req.IfRevision != rev {
			return nil, errConflict
		}
		byRef := map[spec.Ref]*spec.Object{}
		for _, o := range live {
			byRef[o.Ref()] = o
		}
		var refs []spec.Ref
		for _, r := range req.Refs {
			if byRef[r] != nil {
				refs = append(refs, r)
			} else if !req.IgnoreNotFound {
				return nil, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("delete %s: not found", r)}
			}
		}
		if req.Cascade {
			refs = plan.Cascade(live, refs)
		} else if rs := plan.Referrers(live, refs); len(rs) > 0 {
			return nil, &api.Error{Code: api.CodeConflict, Message: plan.ReferrersMessage(rs), Hint: "delete or change those objects first, or delete them too with --cascade"}
		}
		var changes []plan.Change
		for _, ref := range refs {
			changes = append(changes, plan.Change{Op: plan.Delete, Ref: ref, Before: byRef[ref]})
		}
		resp := &api.ApplyResponse{Changes: changes, Summary: plan.Summarize(changes), Revision: rev, DryRun: req.DryRun}
		if !req.DryRun && len(changes) > 0 {
			resp.Revision, resp.Created = rev+1, true
		}
		if !req.WithObjects {
			resp.Changes = changesRefsOnly(changes, false)
		}
		return resp, nil
	}
}

func deleteCases() []cmdCase {
	return []cmdCase{
		{name: "one object", args: []string{"subscription", "web-shop-tools", "-n", "acme"}, setup: cascades, formats: formats(shapeObject),
			out: []string{"Subscription/acme/web-shop-tools deleted"}, errOut: []string{"revision 4: 0 created, 0 updated, 1 deleted"},
			calls: []string{"Delete({Refs:[Subscription/acme/web-shop-tools] DryRun:false WithObjects:false IgnoreNotFound:false Cascade:false IfRevision:0 Force:false})"}},
		{name: "namespace from the environment", args: []string{"subscription", "web-shop-tools"}, env: map[string]string{"STOA_NAMESPACE": "acme"}, setup: cascades,
			out: []string{"Subscription/acme/web-shop-tools deleted"}},
		{name: "several names", args: []string{"subscriptions", "web-shop-tools", "nope", "-n", "acme", "--ignore-not-found", "--force"}, setup: cascades,
			out:   []string{"Subscription/acme/web-shop-tools deleted"},
			calls: []string{"Delete({Refs:[Subscription/acme/web-shop-tools Subscription/acme/nope] DryRun:false WithObjects:false IgnoreNotFound:true Cascade:false IfRevision:0 Force:true})"}},
		{name: "files", args: []string{"-f", filepath.Join(quickstartDir, "globex.yaml"), "--dry-run"}, setup: cascades,
			out: []string{"- delete Tool/globex/weather-api"}, errOut: []string{"dry run: would delete 4 objects; nothing changed (revision 3)"}},
		{name: "referrers refuse", args: []string{"tool", "inventory-api", "-n", "acme"}, setup: cascades, code: ExitFailure,
			errOut: []string{"stoa: delete Tool/acme/inventory-api: 1 object still refers to it", "ToolSet/acme/acme-tools  spec.tools", "hint: delete or change those objects first"}},
		{name: "cascade dry run", args: []string{"tool", "inventory-api", "-n", "acme", "--cascade", "--dry-run"}, setup: cascades,
			out: []string{"- delete ToolSet/acme/acme-tools", "- delete Tool/acme/inventory-api"}, errOut: []string{"would delete"}},
		{name: "cascade without a terminal", args: []string{"tool", "inventory-api", "-n", "acme", "--cascade"}, setup: cascades, code: ExitFailure,
			errOut: []string{"stdin is not a terminal", "hint: review it with: stoa delete tool inventory-api -n acme --cascade --dry-run, then run: stoa delete tool inventory-api -n acme --cascade --yes"},
			calls:  []string{"Delete({Refs:[Tool/acme/inventory-api] DryRun:true WithObjects:true IgnoreNotFound:false Cascade:true IfRevision:0 Force:false})"}},
		{name: "cascade confirmed on a terminal", args: []string{"tool", "inventory-api", "-n", "acme", "--cascade"}, setup: cascades, tty: true, stdin: "y\n",
			out: []string{"ToolSet/acme/acme-tools deleted\nTool/acme/inventory-api deleted\n"}, errOut: []string{"[y/N]"},
			calls: []string{
				"Delete({Refs:[Tool/acme/inventory-api] DryRun:true WithObjects:true IgnoreNotFound:false Cascade:true IfRevision:0 Force:false})",
				"Delete({Refs:[Tool/acme/inventory-api] DryRun:false WithObjects:false IgnoreNotFound:false Cascade:true IfRevision:3 Force:false})"}},
		{name: "cascade declined", args: []string{"tool", "inventory-api", "-n", "acme", "--cascade"}, setup: cascades, tty: true, stdin: "n\n",
			code: ExitFailure, errOut: []string{"cancelled: nothing changed"}},
		{name: "cascade --yes", args: []string{"tool", "inventory-api", "-n", "acme", "--cascade", "--yes", "-o", "json"}, setup: cascades,
			out: []string{`"created": true`}},
		{name: "live revision moved", args: []string{"tool", "inventory-api", "-n", "acme", "--cascade", "-y"},
			setup: func(t *testing.T, fa *clitest.FakeAPI) {
				cascades(t, fa)
				preview := fa.DeleteFunc
				fa.DeleteFunc = func(req *api.DeleteRequest) (*api.ApplyResponse, error) {
					r, err := preview(req)
					fa.LiveRevision = 9 // someone applied in between
					return r, err
				}
			},
			code: ExitFailure, errOut: []string{"stoa: the live revision changed"}},
		{name: "unreachable", args: []string{"tool", "billing-api", "-n", "acme"}, fail: failAll("Delete", errUnreachable), code: ExitUnreachable,
			errOut: []string{"cannot reach stoad"}},
		{name: "forbidden", args: []string{"tool", "billing-api", "-n", "acme"}, fail: failAll("Delete", errForbidden), code: ExitForbidden},
		{name: "not found", args: []string{"tool", "nope", "-n", "acme"}, setup: cascades, code: ExitFailure, errOut: []string{"delete Tool/acme/nope: not found"}},
		{name: "kind only", args: []string{"tool"}, code: ExitFailure, flagErr: true, errOut: []string{"usage: stoa delete KIND NAME..."}},
		{name: "tenant-scoped kind without -n", args: []string{"tool", "billing-api"}, code: ExitFailure, flagErr: true, errOut: []string{"Tool is a tenant-scoped kind: pass -n TENANT"}},
		{name: "unknown kind", args: []string{"tol", "x", "-n", "acme"}, code: ExitFailure, flagErr: true, errOut: []string{`did you mean "tool"`}},
		{name: "names and files", args: []string{"tool", "x", "-n", "acme", "-f", quickstartDir}, code: ExitFailure, flagErr: true, errOut: []string{"not both"}},
	}
}
