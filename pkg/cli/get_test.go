package cli

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

func TestGet(t *testing.T) {
	fa := newFakeAPI(t)
	for _, tc := range []struct {
		args   []string
		code   int
		out    []string
		notOut []string
		errOut string
	}{
		{args: []string{"get", "tools", "-l", "team=finance"}, out: []string{"billing-api"}, notOut: []string{"inventory-api", "weather"}},
		{args: []string{"get", "tools", "-l", "team!=finance"}, out: []string{"inventory-api"}, notOut: []string{"billing-api"}},
		{args: []string{"get", "tools", "-l", "!team", "-l", "team"}, errOut: "no objects found"},
		{args: []string{"get", "tools", "-l", "te am"}, code: 1, errOut: "not a label key"},
		{args: []string{"get", "tool", "billing-api", "-l", "team=finance"}, code: 1, errOut: "NAME or -l SELECTOR, not both"},
		{args: []string{"get", "all", "-n", "acme"}, out: []string{"Acme Corp", "billing-api", "acme-tools", "web-shop-tools"}, notOut: []string{"globex", "weather"}},
		{args: []string{"get", "all"}, out: []string{"acme", "globex"}},
		{args: []string{"get", "all", "x"}, code: 1, errOut: "get all takes no NAME"},
		{args: []string{"get", "tools", "-o", "wide"}, out: []string{"LABELS", "team=finance"}},
		// apply shares the selector parser; stoad's prune scope matches equality only.
		{args: []string{"apply", "-f", quickstartDir, "--prune", "-l", "team!=x"}, code: 1, errOut: "only key=value"},
		{args: []string{"apply", "-f", quickstartDir, "--prune", "-l", "team=finance"}, out: []string{"Tenant/initech created"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := fa.run(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.errOut) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notOut {
				if strings.Contains(out, w) {
					t.Errorf("stdout has %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestGetListApplies: get -o yaml|json of several objects is one List
// document holding whole objects, and it loads back as those objects.
func TestGetListApplies(t *testing.T) {
	fa := newFakeAPI(t)
	_, out, _ := fa.run("get", "all", "-n", "acme", "-o", "json")
	var list struct {
		APIVersion, Kind string
		Items            []*spec.Object
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if list.APIVersion != spec.APIVersion || list.Kind != "List" || len(list.Items) != 7 {
		t.Fatalf("got %s %s with %d items", list.APIVersion, list.Kind, len(list.Items))
	}
	// Dependency order: the Tenant first, the Subscription last.
	if list.Items[0].Kind != spec.KindTenant || list.Items[6].Kind != spec.KindSubscription {
		t.Fatalf("order: %v ... %v", list.Items[0].Ref(), list.Items[6].Ref())
	}
}

// TestGetWatch: --watch prints the list, then only what each new revision
// changes — added, modified and deleted objects — and stops cleanly.
func TestGetWatch(t *testing.T) {
	for _, format := range []string{"json", "table"} {
		t.Run(format, func(t *testing.T) {
			fa := newFakeAPI(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stdout syncBuffer
			done := make(chan int)
			go func() {
				done <- Run(ctx, []string{"--socket", fa.socket, "get", "tools", "-n", "acme", "-w", "-o", format},
					&IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: io.Discard})
			}()
			waitFor(t, func() bool { return strings.Contains(stdout.String(), "inventory-api") })

			// One revision: billing-api changes, inventory-api goes, a
			// new tool comes; globex's tools are not watched.
			objs := quickstartObjects(t)
			var next []*spec.Object
			for _, o := range objs {
				switch o.Metadata.Name {
				case "inventory-api":
					continue
				case "billing-api":
					o.Spec.(*spec.ToolSpec).Description = "changed"
					n := spec.Clone(o)
					n.Metadata.Name = "new-api"
					next = append(next, n)
				case "weather-api":
					o.Spec.(*spec.ToolSpec).Description = "not watched"
				}
				next = append(next, o)
			}
			fa.commit(next)
			want := map[string]bool{"billing-api": true, "new-api": true, "inventory-api": true}
			waitFor(t, func() bool {
				out := stdout.String()
				return strings.Contains(out, "DELETED") && strings.Contains(out, "new-api") && strings.Contains(out, "MODIFIED") &&
					strings.HasSuffix(out, "\n")
			})
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit %d", code)
			}
			out := stdout.String()
			if strings.Contains(out, "weather") {
				t.Fatalf("another tenant's tool printed:\n%s", out)
			}
			if format == "table" {
				rows := map[string]bool{}
				for _, l := range strings.Split(out, "\n") {
					if f := strings.Fields(l); len(f) >= 3 {
						rows[strings.Join(f[:3], " ")] = true
					}
				}
				for _, w := range []string{"EVENT TENANT NAME", "MODIFIED acme billing-api", "ADDED acme new-api", "DELETED acme inventory-api"} {
					if !rows[w] {
						t.Errorf("table lacks a row %q:\n%s", w, out)
					}
				}
				return
			}
			var evs []WatchEvent
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var e WatchEvent
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				evs = append(evs, e)
			}
			// 2 initial ADDED, then 3 changes at revision 4.
			if len(evs) != 5 || evs[0].Type != watchAdded || evs[0].Revision != 3 {
				t.Fatalf("events:\n%s", out)
			}
			got := map[string]string{}
			for _, e := range evs[2:] {
				if e.Revision != 4 || !want[e.Object.Metadata.Name] {
					t.Fatalf("unexpected %+v", e)
				}
				got[e.Object.Metadata.Name] = e.Type
			}
			if got["billing-api"] != watchModified || got["new-api"] != watchAdded || got["inventory-api"] != watchDeleted {
				t.Fatalf("change types %v", got)
			}
		})
	}
}

func getCases() []cmdCase {
	return []cmdCase{
		{name: "dataplanes", args: []string{"dataplanes"}, formats: formats(shapeList),
			out:   []string{"NAME     ADDRESS                       REVISION   LAG   LAST SEEN   HEALTH", "edge-1   https://edge-1.example:8443   42         0     3s          ok", "edge-2   10.0.4.7                      41         1     2m          stale"},
			calls: []string{"DataPlanes()"}},
		{name: "dataplanes wide", args: []string{"dp", "-o", "wide"}, out: []string{"DIGEST", "sha256:cdcdcdcdcdcd", "watch: connection refused"}},
		{name: "dataplanes as json", args: []string{"dataplanes", "-o", "json"}, out: []string{`"kind": "DataplaneList"`, `"revision": 42`, `"lag": 1`}},
		{name: "one dataplane", args: []string{"dataplane", "edge-2", "-o", "yaml"}, out: []string{"name: edge-2", "health: stale"}, notOut: []string{"edge-1"}},
		{name: "unknown dataplane", args: []string{"dataplane", "edge-9"}, code: ExitFailure, errOut: []string{`data plane "edge-9" not found`, "stoa get dataplanes"}},
		{name: "no dataplanes (standalone)", args: []string{"dataplanes"}, setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.DataPlaneList.Items = nil },
			errOut: []string{"no data planes"}},
		{name: "no dataplanes as json", args: []string{"dataplanes", "-o", "json"}, setup: func(t *testing.T, fa *clitest.FakeAPI) { fa.DataPlaneList.Items = nil },
			out: []string{`"items": []`}},
		{name: "dataplanes with -n", args: []string{"dataplanes", "-n", "acme"}, code: ExitFailure, flagErr: true, errOut: []string{"--namespace does not apply"}},
		{name: "dataplanes unreachable", args: []string{"dataplanes"}, fail: failAll("DataPlanes", errUnreachable), code: ExitUnreachable},
		{name: "a kind", args: []string{"tools"}, formats: formats(shapeList), out: []string{"TENANT", "UPSTREAM", "billing-api", "weather-api"},
			notOut: []string{"Acme Corp"}, calls: []string{`Objects("Tool", "", "")`}},
		{name: "one object", args: []string{"tool", "billing-api", "-n", "acme"}, formats: formats(shapeObject),
			calls: []string{`Objects("Tool", "acme", "billing-api")`}},
		{name: "a tenant's everything", args: []string{"all", "-n", "acme"}, formats: formats(shapeList),
			out: []string{"Acme Corp", "billing-api", "acme-tools", "web-shop-tools"}, notOut: []string{"weather-api"},
			calls: []string{`Objects("", "", "")`}},
		{name: "cluster-scoped kinds ignore -n", args: []string{"tenants", "-n", "acme"}, out: []string{"globex"}, calls: []string{`Objects("Tenant", "", "")`}},
		{name: "-A wins over -n", args: []string{"tools", "-A", "-n", "acme"}, out: []string{"weather-api"}, calls: []string{`Objects("Tool", "", "")`}},
		{name: "namespace from the environment", args: []string{"tools"}, env: map[string]string{"STOA_NAMESPACE": "globex"},
			calls: []string{`Objects("Tool", "globex", "")`}, out: []string{"weather-api"}, notOut: []string{"billing-api"}},
		{name: "wide", args: []string{"tools", "-o", "wide"}, out: []string{"ROUTE", "RATE LIMIT", "LABELS", "team=finance"}},
		{name: "selector", args: []string{"tools", "-l", "team=finance"}, out: []string{"billing-api"}, notOut: []string{"inventory-api", "weather-api"}},
		{name: "nothing matches", args: []string{"tools", "-l", "!team", "-l", "team"}, errOut: []string{"no objects found"}},
		{name: "name in several tenants", args: []string{"tool", "billing-api"},
			setup: func(t *testing.T, fa *clitest.FakeAPI) {
				c := spec.Clone(fa.LiveObjects[2])
				for _, o := range fa.LiveObjects {
					if o.Metadata.Name == "billing-api" {
						c = spec.Clone(o)
					}
				}
				c.Metadata.Namespace = "globex"
				fa.LiveObjects = append(fa.LiveObjects, c)
			},
			code: ExitFailure, errOut: []string{`Tool "billing-api" exists in several tenants (acme, globex): pass -n TENANT`}},
		{name: "watch until stoad stops", args: []string{"tools", "-n", "acme", "--watch"}, code: ExitUnreachable,
			out:    []string{"billing-api", "inventory-api"},
			errOut: []string{"watch: stoad closed the event stream (stopped or restarting?)"},
			calls:  []string{`Events({Since:0 Last:1 Follow:true})`, `Objects("Tool", "acme", "")`}},
		{name: "watch as json", args: []string{"tools", "-n", "acme", "-w", "-o", "json"}, code: ExitUnreachable,
			out: []string{`{"type":"ADDED","revision":3,"object":{"apiVersion":"stoa.io/v1alpha1","kind":"Tool"`}},
		{name: "watch refused", args: []string{"tools", "-w"}, fail: failAll("Events", errDenied), code: ExitForbidden, errOut: []string{"hint: start stoad with --socket-group"}},
		{name: "not found", args: []string{"tool", "nope", "-n", "acme"}, code: ExitFailure, errOut: []string{`stoa: Tool "nope" not found`}},
		{name: "unreachable", args: []string{"tools"}, fail: failAll("Objects", errUnreachable), code: ExitUnreachable, errOut: []string{"cannot reach stoad"}},
		{name: "forbidden", args: []string{"tools"}, fail: failAll("Objects", errForbidden), code: ExitForbidden,
			errOut: []string{"hint: run stoa as root (uid 0) (or root), or ask for membership of stoad's --socket-group"}},
		{name: "unknown kind", args: []string{"tols"}, code: ExitFailure, flagErr: true, errOut: []string{`unknown kind "tols"; did you mean "tools"?`}},
		{name: "all with a name", args: []string{"all", "x"}, code: ExitFailure, flagErr: true, errOut: []string{"get all takes no NAME"}},
		{name: "name and selector", args: []string{"tool", "x", "-l", "a=b"}, code: ExitFailure, flagErr: true, errOut: []string{"NAME or -l SELECTOR, not both"}},
		{name: "bad selector", args: []string{"tools", "-l", "te am"}, code: ExitFailure, flagErr: true, errOut: []string{"not a label key"}},
		{name: "no kind", code: ExitFailure, flagErr: true, errOut: []string{"accepts between 1 and 2 arg(s)"}},
	}
}
