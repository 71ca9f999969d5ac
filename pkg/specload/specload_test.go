package specload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

const quickstart = "../../examples/quickstart"

func write(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadQuickstart: the example loads cleanly in every reference mode,
// defaulted, and the raw form holds the objects as written: decoded and
// defaulted the way stoad does, it gives the very same objects.
func TestLoadQuickstart(t *testing.T) {
	for _, refs := range []References{ReferencesLive, ReferencesOffline, ReferencesStrict} {
		res, err := Load(context.Background(), []string{quickstart}, Options{References: refs, KeepRaw: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Diagnostics.HasErrors() || len(res.Objects) < 5 {
			t.Fatalf("refs %d: %d objects, %v", refs, len(res.Objects), res.Diagnostics)
		}
		for _, o := range res.Objects {
			if ts, ok := o.Spec.(*spec.ToolSpec); ok && (ts.Timeouts == nil || ts.Route == nil || ts.Auth == nil) {
				t.Errorf("%s is not defaulted: %+v", o.Ref(), ts)
			}
		}
		if strings.Contains(string(res.Raw), `"timeouts"`) || strings.Contains(string(res.Raw), `"circuitBreaker"`) {
			t.Errorf("raw form holds defaults: %s", res.Raw)
		}
		var raw []*spec.Object
		if err := json.Unmarshal(res.Raw, &raw); err != nil || len(raw) != len(res.Objects) {
			t.Fatalf("raw: %d objects, %v", len(raw), err)
		}
		for i, o := range raw {
			spec.Default(o)
			if plan.DigestOf(o) != plan.DigestOf(res.Objects[i]) {
				t.Errorf("%s: raw form defaults to another object", o.Ref())
			}
		}
	}
	res, _ := Load(context.Background(), []string{quickstart}, Options{})
	if res.Raw != nil {
		t.Error("raw form without KeepRaw")
	}
}

// TestLoadReferences: a reference to an object the files lack is left to
// stoad, a note, or an error, by mode.
func TestLoadReferences(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "sub.yaml", `apiVersion: stoa.io/v1alpha1
kind: Subscription
metadata: {name: s, namespace: acme}
spec: {consumer: web, plan: gold, tool: billing}
`)
	for refs, want := range map[References]string{ReferencesLive: "", ReferencesOffline: "note", ReferencesStrict: "error"} {
		res, err := Load(context.Background(), []string{dir}, Options{References: refs})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, d := range res.Diagnostics {
			if strings.Contains(d.Message, "gold") {
				got = string(d.Severity)
			}
		}
		if got != want {
			t.Errorf("refs %d: diagnostic about the plan %q, want %q: %v", refs, got, want, res.Diagnostics)
		}
	}
}

// TestLoadReportsEveryProblem: a document that does not decode does not
// hide validation problems in the others, and diagnostics come sorted.
func TestLoadReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: t, namespace: acme}
spec:
  upstream: http://127.0.0.1:1
  timeouts: {connect: 5x}
`)
	write(t, dir, "b.yaml", `apiVersion: stoa.io/v1alpha1
kind: Tool
metadata: {name: u, namespace: acme}
spec:
  upstream: ftp://127.0.0.1:1
`)
	res, err := Load(context.Background(), []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, d := range res.Diagnostics {
		msgs = append(msgs, d.File+": "+d.Message)
	}
	if len(msgs) != 2 || !strings.Contains(msgs[0], `a.yaml: invalid duration "5x"`) || !strings.Contains(msgs[1], "b.yaml") {
		t.Fatalf("diagnostics:\n%s", strings.Join(msgs, "\n"))
	}
}

// TestLoadOpenAPI: `openapi:` imports operations from a file next to the
// spec, and from a URL only when remote documents are allowed.
func TestLoadOpenAPI(t *testing.T) {
	doc, err := os.ReadFile("../openapi/testdata/petstore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(doc) }))
	defer srv.Close()
	dir := t.TempDir()
	write(t, dir, "petstore.openapi", string(doc))
	tool := func(name, loc string) string {
		return "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: " + name + ", namespace: acme}\nspec:\n  upstream: http://127.0.0.1:1\n  auth: {type: none}\n  openapi: " + loc + "\n"
	}
	local := write(t, dir, "local.yaml", tool("local", "./petstore.openapi"))
	remote := write(t, dir, "remote.yaml", tool("remote", srv.URL+"/petstore.yaml"))

	res, err := Load(context.Background(), []string{local}, Options{})
	if err != nil || res.Diagnostics.HasErrors() || len(res.Objects) != 1 || len(res.Objects[0].Spec.(*spec.ToolSpec).Operations) == 0 {
		t.Fatalf("local document: %v %v", err, res.Diagnostics)
	}
	res, err = Load(context.Background(), []string{remote}, Options{})
	if err != nil || !res.Diagnostics.HasErrors() {
		t.Fatalf("remote document without RemoteOpenAPI: want an error, got %v %v", err, res.Diagnostics)
	}
	res, err = Load(context.Background(), []string{remote}, Options{RemoteOpenAPI: true, HTTPClient: srv.Client()})
	if err != nil || res.Diagnostics.HasErrors() || len(res.Objects[0].Spec.(*spec.ToolSpec).Operations) == 0 {
		t.Fatalf("remote document: %v %v", err, res.Diagnostics)
	}
}

func TestLoadStdin(t *testing.T) {
	in := "apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: acme}\nspec: {}\n"
	res, err := Load(context.Background(), []string{"-"}, Options{Stdin: strings.NewReader(in)})
	if err != nil || len(res.Diagnostics) > 0 || len(res.Objects) != 1 || res.Objects[0].Source.File != spec.StdinName {
		t.Fatalf("stdin: %v %v", err, res.Diagnostics)
	}
}

func TestPruneScope(t *testing.T) {
	res, err := Load(context.Background(), []string{quickstart}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := PruneScope(res.Objects, false, map[string]string{"team": "x"})
	if !reflect.DeepEqual(sc.Namespaces, []string{"acme", "globex"}) || sc.All || sc.Selector["team"] != "x" {
		t.Errorf("scope %+v", sc)
	}
}

// TestLoadRawIsMarshalledAsWritten: the raw form, encoded object by
// object on all processors, is byte for byte what encoding/json writes
// for the objects as read without HTML escaping (the canonical encoding;
// enough of them for several batches, with text json escapes), and the
// objects come back defaulted all the same.
func TestLoadRawIsMarshalledAsWritten(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: acme\nspec: {}\n")
	for i := range 300 {
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata:\n  name: t%03d\n  namespace: acme\nspec:\n  description: \"<b> & \\u2028 %d\"\n  upstream: http://127.0.0.1:1/t%d\n", i, i, i)
	}
	write(t, dir, "specs.yaml", b.String())
	res, err := Load(context.Background(), []string{dir}, Options{KeepRaw: true})
	if err != nil || res.Diagnostics.HasErrors() {
		t.Fatalf("%v %v", err, res.Diagnostics)
	}
	asRead, _ := spec.Load([]string{dir}, nil)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(asRead); err != nil {
		t.Fatal(err)
	}
	if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); string(res.Raw) != string(want) {
		t.Fatalf("raw form differs from encoding/json:\n%.300s\nwant\n%.300s", res.Raw, want)
	}
	var back []*spec.Object
	if err := json.Unmarshal(res.Raw, &back); err != nil || len(back) != len(asRead) {
		t.Fatalf("raw form decodes to %d objects (%v)", len(back), err)
	}
	for i, o := range back {
		if o.Kind != asRead[i].Kind || !reflect.DeepEqual(o.Metadata, asRead[i].Metadata) || !reflect.DeepEqual(o.Spec, asRead[i].Spec) {
			t.Fatalf("raw form decodes to another %s", o.Ref())
		}
	}
	for _, o := range res.Objects {
		if ts, ok := o.Spec.(*spec.ToolSpec); ok && ts.Timeouts == nil {
			t.Fatalf("%s is not defaulted", o.Ref())
		}
	}
	for _, objs := range [][]*spec.Object{nil, {}} {
		elems := make([][]byte, len(objs))
		want, _ := json.Marshal(objs)
		if got := joinArray(objs == nil, elems); string(got) != string(want) {
			t.Errorf("joinArray of %#v = %s, want %s", objs, got, want)
		}
	}
}

// TestLoadDeferRaw: with DeferRaw the raw form waits for EncodeRaw, which
// gives byte for byte the eager raw form, and leaves the objects defaulted
// exactly as an eager load does — for the examples, the spec testdata and
// enough generated objects for several batches of defaults.
func TestLoadDeferRaw(t *testing.T) {
	gen := t.TempDir()
	var b strings.Builder
	b.WriteString("apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata:\n  name: acme\nspec: {}\n")
	for i := range 700 {
		fmt.Fprintf(&b, "---\napiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata:\n  name: t%03d\n  namespace: acme\nspec:\n  upstream: http://127.0.0.1:1/t%d\n  retries: {on: [reset]}\n  operations:\n  - {name: get, method: GET, path: /x}\n", i, i)
	}
	write(t, gen, "specs.yaml", b.String())
	for _, paths := range [][]string{{quickstart}, {"../../examples"}, {"../spec/testdata/valid"}, {gen}} {
		eager, err := Load(context.Background(), paths, Options{KeepRaw: true})
		if err != nil {
			t.Fatal(err)
		}
		deferred, err := Load(context.Background(), paths, Options{KeepRaw: true, DeferRaw: true})
		if err != nil {
			t.Fatal(err)
		}
		if deferred.Raw != nil {
			t.Fatalf("%v: raw form encoded up front", paths)
		}
		if len(eager.Objects) == 0 || len(eager.Objects) != len(deferred.Objects) {
			t.Fatalf("%v: %d and %d objects", paths, len(eager.Objects), len(deferred.Objects))
		}
		same := func(when string) {
			for i, o := range deferred.Objects {
				if !reflect.DeepEqual(o.Spec, eager.Objects[i].Spec) || !reflect.DeepEqual(o.Metadata, eager.Objects[i].Metadata) {
					t.Fatalf("%v %s: %s defaulted differently", paths, when, o.Ref())
				}
			}
		}
		same("before EncodeRaw")
		raw, err := deferred.EncodeRaw()
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) != string(eager.Raw) || string(deferred.Raw) != string(raw) {
			t.Fatalf("%v: deferred raw form differs:\n%.300s\nwant\n%.300s", paths, raw, eager.Raw)
		}
		same("after EncodeRaw")
		if again, _ := deferred.EncodeRaw(); string(again) != string(raw) {
			t.Fatalf("%v: second EncodeRaw differs", paths)
		}
	}
	// Without KeepRaw there is nothing to encode.
	res, _ := Load(context.Background(), []string{quickstart}, Options{DeferRaw: true})
	if raw, err := res.EncodeRaw(); raw != nil || err != nil {
		t.Errorf("EncodeRaw without KeepRaw: %.40s, %v", raw, err)
	}
}
