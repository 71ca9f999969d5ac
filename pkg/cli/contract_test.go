package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// The tests in this file walk the whole command tree, so a new command
// that breaks a CLI convention fails here rather than in a user's script.

// shape is what a command's -o json document must be.
type shape int

const (
	shapeObject shape = iota // one object (not a list)
	shapeList                // {"apiVersion", "kind": "…List", "items": [...]}
	shapeSpecs               // a spec set: YAML documents that load; JSON a List
	shapeSpec                // one spec object: YAML that loads; JSON the object
)

type sample struct {
	args  []string
	shape shape
	code  int // expected exit code
}

var quickstartDir = filepath.Join("..", "..", "examples", "quickstart")

// contractSamples holds at least one command line per command that prints
// data. A new command must be added here (the test says so).
func contractSamples() map[string][]sample {
	petstore := filepath.Join("..", "openapi", "testdata", "petstore.yaml")
	return map[string][]sample{
		"stoa validate":                {{args: []string{"-f", quickstartDir}}},
		"stoa diff":                    {{args: []string{"-f", quickstartDir}, code: ExitChanges}},
		"stoa apply":                   {{args: []string{"-f", quickstartDir}}, {args: []string{"-f", quickstartDir, "--dry-run"}}},
		"stoa delete":                  {{args: []string{"tenant", "initech", "--dry-run"}}},
		"stoa rollback":                {{args: []string{"2", "--dry-run"}}},
		"stoa get":                     {{args: []string{"tools"}, shape: shapeList}, {args: []string{"tool", "billing-api", "-n", "acme"}}, {args: []string{"all", "-n", "acme"}, shape: shapeList}, {args: []string{"dataplanes"}, shape: shapeList}},
		"stoa history":                 {{shape: shapeList}, {args: []string{"3"}}},
		"stoa status":                  {{}},
		"stoa events":                  {{args: []string{"--last", "3"}, shape: shapeList}},
		"stoa version":                 {{}},
		"stoa top":                     {{}},
		"stoa export":                  {{args: []string{"-n", "acme"}, shape: shapeSpecs}, {shape: shapeSpecs}},
		"stoa explain":                 {{args: []string{"tool.auth"}}},
		"stoa import openapi":          {{args: []string{petstore, "--tenant", "acme", "--name", "petstore"}, shape: shapeSpec}},
		"stoa keys create":             {{args: []string{"--consumer", "web-shop", "-n", "acme"}}},
		"stoa keys list":               {{args: []string{"-A"}, shape: shapeList}},
		"stoa keys revoke":             {{args: []string{"k3v7q2m4x5c6b7n2"}}},
		"stoa keys rotate":             {{args: []string{"k3v7q2m4x5c6b7n2"}}},
		"stoa audit":                   {{shape: shapeList}},
		"stoa audit verify":            {{}},
		"stoa snapshots list":          {{args: []string{"-A"}, shape: shapeList}},
		"stoa snapshots get":           {{args: []string{"snp_1"}}},
		"stoa snapshots replay":        {{args: []string{"snp_1"}}},
		"stoa webhooks deliveries":     {{args: []string{"ops", "-A"}, shape: shapeList}},
		"stoa webhooks show":           {{args: []string{"dlv_1"}}},
		"stoa webhooks redeliver":      {{args: []string{"dlv_1"}}},
		"stoa webhooks test":           {{args: []string{"ops", "-n", "acme"}}},
		"stoa quotas":                  {{args: []string{"-A"}, shape: shapeList}},
		"stoa xdp status":              {{}},
		"stoa xdp blocks":              {{shape: shapeList}},
		"stoa xdp block":               {{args: []string{"198.51.100.9", "--for", "10m"}}},
		"stoa xdp unblock":             {{args: []string{"198.51.100.7"}}},
		"stoa fleet join-token create": {{args: []string{"--name", "edge-9"}}},
		"stoa fleet join-token list":   {{shape: shapeList}},
		"stoa fleet join-token revoke": {{args: []string{"5bc1dc"}}},
		"stoa fleet dataplane revoke":  {{args: []string{"edge-1"}}},
		"stoa bundle verify":           {{args: []string{filepath.Join("testdata", "bundle", "bundle.json"), "--key", filepath.Join("testdata", "bundle", "cosign.pub")}}},
		"stoa context list":            {{shape: shapeList}},
		"stoa context current":         {{}},
	}
}

// walk visits every command below (and including) c.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

func testRoot() *cobra.Command {
	return NewRootCmd(&Factory{IO: &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}, Now: time.Now})
}

func printsNoData(c *cobra.Command) bool {
	for ; c != nil; c = c.Parent() {
		if c.Annotations[annotationOutput] == outputNone {
			return true
		}
	}
	return false
}

// isGroup reports whether c only groups other commands.
func isGroup(c *cobra.Command) bool {
	return c.RunE != nil && reflect.ValueOf(c.RunE).Pointer() == reflect.ValueOf(unknownSubcommand).Pointer()
}

// TestOutputContract runs every command that prints data with each -o
// value against a fake LocalAPI and checks the output's shape: one JSON
// document (a List for lists), YAML that is the same document, NDJSON with
// one line per item, and tables that are not JSON.
func TestOutputContract(t *testing.T) {
	samples := contractSamples()
	var paths []string
	walk(testRoot(), func(c *cobra.Command) {
		if !c.Runnable() || isGroup(c) || printsNoData(c) {
			return
		}
		paths = append(paths, c.CommandPath())
		if _, ok := samples[c.CommandPath()]; !ok {
			t.Errorf("%s prints data but has no sample in contractSamples: add one so its -o output is checked", c.CommandPath())
		}
	})
	for path := range samples {
		if !slices.Contains(paths, path) {
			t.Errorf("contractSamples names %q, which is not a command that prints data", path)
		}
	}
	fa := newFakeAPI(t)
	for path, ss := range samples {
		for _, s := range ss {
			args := append(strings.Fields(path)[1:], s.args...)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				outs := map[string]string{}
				for _, format := range append([]string{""}, OutputFormats...) {
					a := args
					if format != "" {
						a = append(append([]string(nil), args...), "-o", format)
					}
					code, out, errOut := fa.run(a...)
					if code != s.code {
						t.Fatalf("-o %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", format, code, s.code, out, errOut)
					}
					if strings.TrimSpace(out) == "" {
						t.Fatalf("-o %q: nothing on stdout (stderr: %s)", format, errOut)
					}
					outs[format] = out
				}
				checkShapes(t, s.shape, outs)
			})
		}
	}
}

func checkShapes(t *testing.T, sh shape, outs map[string]string) {
	t.Helper()
	if outs[""] != outs[outTable] {
		t.Errorf("the default output differs from -o table:\n%s\n---\n%s", outs[""], outs[outTable])
	}
	for _, f := range []string{outTable, outWide} {
		if json.Valid([]byte(outs[f])) {
			t.Errorf("-o %s printed JSON, not a table:\n%s", f, outs[f])
		}
	}
	doc := oneJSON(t, outs[outJSON])
	obj, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("-o json printed %T, want one object:\n%s", doc, outs[outJSON])
	}
	items, isList := obj["items"]
	if isList || sh == shapeList || sh == shapeSpecs {
		kind, _ := obj["kind"].(string)
		if obj["apiVersion"] != spec.APIVersion || !strings.HasSuffix(kind, "List") {
			t.Errorf(`-o json list must have apiVersion %q and kind "…List"; got %v, %v`, spec.APIVersion, obj["apiVersion"], obj["kind"])
		}
		if _, ok := items.([]any); !ok {
			t.Fatalf("-o json: want an items array, got %T:\n%s", items, outs[outJSON])
		}
		if sh == shapeSpecs && kind != "List" {
			t.Errorf(`-o json of specs must be a "kind: List" of objects (apply accepts it), got kind %q`, kind)
		}
	}
	if sh == shapeSpecs || sh == shapeSpec {
		// The YAML is a spec set: it must load as specs, the same objects
		// as the JSON.
		objs, diags := spec.Load([]string{"-"}, strings.NewReader(outs[outYAML]))
		if diags.HasErrors() {
			t.Fatalf("-o yaml does not load as specs: %v\n%s", diags, outs[outYAML])
		}
		var want, got []string
		docs := []any{doc}
		if isList {
			docs = items.([]any)
		}
		for _, d := range docs {
			b, _ := json.Marshal(d)
			var o spec.Object
			if err := json.Unmarshal(b, &o); err != nil {
				t.Fatalf("-o json item is not an object: %v", err)
			}
			want = append(want, defaultedString(&o))
		}
		for _, o := range objs {
			got = append(got, defaultedString(o))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("-o yaml holds other objects than -o json:\n%v\n%v", got, want)
		}
	} else {
		y := oneYAML(t, outs[outYAML])
		if !reflect.DeepEqual(y, doc) {
			t.Errorf("-o yaml is not the same document as -o json:\nyaml: %v\njson: %v", y, doc)
		}
	}
	var lines []any
	for _, l := range strings.Split(strings.TrimRight(outs[outNDJSON], "\n"), "\n") {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("-o ndjson line %q: %v", l, err)
		}
		lines = append(lines, v)
	}
	want := []any{doc}
	if isList {
		want = items.([]any)
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("-o ndjson lines are not the items (or the object) of -o json:\n%s", outs[outNDJSON])
	}
}

// defaultedString is o with defaults, encoded: what apply would make of it.
func defaultedString(o *spec.Object) string {
	c := spec.Clone(o)
	c.Source = nil
	spec.Default(c)
	b, _ := json.Marshal(c)
	return string(b)
}

// oneJSON decodes exactly one JSON value from s.
func oneJSON(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, s)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("-o json printed more than one document (NDJSON?):\n%s", s)
	}
	return v
}

// oneYAML decodes exactly one YAML document from s, as JSON values.
func oneYAML(t *testing.T, s string) any {
	t.Helper()
	if strings.Contains("\n"+s, "\n---") {
		t.Fatalf("-o yaml printed several documents:\n%s", s)
	}
	j, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		t.Fatalf("-o yaml is not YAML: %v\n%s", err, s)
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		t.Fatalf("-o yaml as JSON: %v\n%s", err, j)
	}
	return v
}

// TestExtraArgumentsFail: a stray argument after a valid command line is
// an error, not silently ignored. (delete takes any number of NAMEs, so a
// stray one is a name: stoad reports it missing.)
func TestExtraArgumentsFail(t *testing.T) {
	fa := newFakeAPI(t)
	for path, ss := range contractSamples() {
		if path == "stoa delete" {
			continue
		}
		args := append(append(strings.Fields(path)[1:], ss[0].args...), "stray-arg")
		if code, _, errOut := fa.run(args...); code == 0 || code == ExitChanges {
			t.Errorf("stoa %s: exit %d (stderr %q), want an error", strings.Join(args, " "), code, errOut)
		}
	}
}

// TestNoDataCommandsRefuseOutput: -o does not silently pass on commands
// that print no data.
func TestNoDataCommandsRefuseOutput(t *testing.T) {
	fa := newFakeAPI(t)
	n := 0
	walk(testRoot(), func(c *cobra.Command) {
		if !c.Runnable() || !printsNoData(c) || c.Name() == "help" {
			return
		}
		n++
		args := append(strings.Fields(c.CommandPath())[1:], "-o", "json")
		code, _, errOut := fa.run(args...)
		if strings.Contains(errOut, "arg(s)") {
			// Arguments are checked before -o: give the one it wants.
			args = append(args, "x")
			code, _, errOut = fa.run(args...)
		}
		if code != ExitFailure || !strings.Contains(errOut, "prints no data") {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 saying it prints no data", args, code, errOut)
		}
	})
	if n < 3 {
		t.Fatalf("only %d commands print no data; the walk is broken", n)
	}
}

// TestUnknownSubcommands: every command with subcommands, given one it
// does not have, exits 1 naming it — and suggests the closest.
func TestUnknownSubcommands(t *testing.T) {
	fa := newFakeAPI(t)
	n := 0
	walk(testRoot(), func(c *cobra.Command) {
		if !c.HasSubCommands() {
			return
		}
		n++
		args := append(strings.Fields(c.CommandPath())[1:], "bogus-cmd", "x.yaml")
		code, out, errOut := fa.run(args...)
		if code != ExitFailure || !strings.Contains(errOut, `unknown command "bogus-cmd"`) || out != "" {
			t.Errorf("stoa %v: exit %d, stdout %q, stderr %q; want exit 1 and unknown command", strings.Join(args, " "), code, out, errOut)
		}
		// A typo of a real subcommand gets a did-you-mean.
		sub := c.Commands()[0]
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() && len(s.Name()) > 3 {
				sub = s
				break
			}
		}
		typo := sub.Name()[:len(sub.Name())-1]
		args = append(strings.Fields(c.CommandPath())[1:], typo+"x")
		if code, _, errOut := fa.run(args...); code != ExitFailure || !strings.Contains(errOut, `did you mean "`+sub.Name()+`"`) {
			t.Errorf("stoa %v: exit %d, stderr %q; want a did-you-mean %q", strings.Join(args, " "), code, errOut, sub.Name())
		}
	})
	if n < 8 {
		t.Fatalf("only %d commands with subcommands; the walk is broken", n)
	}
	for _, args := range [][]string{{"help", "bogus-cmd"}, {"help", "keys", "bogus-cmd"}} {
		if code, _, errOut := fa.run(args...); code != ExitFailure || !strings.Contains(errOut, "unknown command") {
			t.Errorf("stoa %v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if code, out, _ := fa.run("help", "keys"); code != 0 || !strings.Contains(out, "rotate") {
		t.Errorf("stoa help keys: exit %d\n%s", code, out)
	}
	// Without arguments a group still shows its help.
	if code, out, _ := fa.run("keys"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("stoa keys: exit %d\n%s", code, out)
	}
}

// TestEnumFlags: every enum flag of every command rejects an unknown
// value with exit 1 and suggests the value it resembles.
func TestEnumFlags(t *testing.T) {
	fa := newFakeAPI(t)
	n := 0
	walk(testRoot(), func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			ev, ok := fl.Value.(*enumValue)
			if !ok {
				return
			}
			n++
			good := ev.values[len(ev.values)-1]
			bad := good[:len(good)-1]
			args := append(strings.Fields(c.CommandPath())[1:], "--"+fl.Name, bad)
			code, out, errOut := fa.run(args...)
			if code != ExitFailure || out != "" || !strings.Contains(errOut, `did you mean "`+good+`"`) {
				t.Errorf("stoa %v: exit %d, stderr %q; want exit 1 with did you mean %q", strings.Join(args, " "), code, errOut, good)
			}
		})
	})
	if n < 2 {
		t.Fatalf("found %d enum flags; the walk is broken", n)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "tols"}, `did you mean "tools"`},
		{[]string{"get", "al"}, `did you mean "all"`},
		{[]string{"delete", "tol", "x", "-n", "acme"}, `did you mean "tool"`},
		{[]string{"completion", "fsh"}, `did you mean "fish"`},
		{[]string{"status", "-o", "jsn"}, `did you mean "json"`},
	} {
		if code, _, errOut := fa.run(tc.args...); code != ExitFailure || !strings.Contains(errOut, tc.want) {
			t.Errorf("stoa %v: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestStreamsAreNDJSON: --follow and --watch print one JSON value per line
// for -o json, and YAML documents for -o yaml.
func TestStreamsAreNDJSON(t *testing.T) {
	fa := newFakeAPI(t)
	code, out, errOut := fa.run("top", "--follow", "-o", "json")
	if code != 0 {
		t.Fatalf("top --follow: exit %d: %s", code, errOut)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !json.Valid([]byte(lines[0])) {
		t.Fatalf("top --follow -o json: want 2 NDJSON samples (the first, rate-less one skipped):\n%s", out)
	}
	_, out, _ = fa.run("top", "--follow", "-o", "yaml")
	if strings.Count(out, "\n---\n") != 1 {
		t.Fatalf("top --follow -o yaml: want 2 documents:\n%s", out)
	}

	// events --follow: the backlog, then what happens.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"--socket", fa.socket, "events", "--follow", "--last", "2", "-o", "json"},
			&IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: io.Discard})
	}()
	waitFor(t, func() bool { return strings.Count(stdout.String(), "\n") == 2 })
	fa.live <- fa.events[0]
	waitFor(t, func() bool { return strings.Count(stdout.String(), "\n") == 3 })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("events --follow ended with %d", code)
	}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Fatalf("events --follow line %q is not JSON", l)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond; the generous limit only matters when the test fails.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
	}
}
