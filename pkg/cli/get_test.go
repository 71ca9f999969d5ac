package cli

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

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
