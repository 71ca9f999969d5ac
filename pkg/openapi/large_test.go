package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/mcp"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// githubLike generates an OpenAPI 3.0 document shaped like GitHub's REST
// description (api.github.com.json: 1,223 operations, 13 MB): shared
// parameters by $ref, a few hundred component schemas that reference each
// other heavily (simple-user and repository everywhere), large response
// examples, and request bodies that are mostly objects but sometimes
// oneOf/anyOf/arrays. nOps operations; the generator is deterministic.
func githubLike(nOps int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	word := func(i int) string {
		words := []string{"repo", "issue", "label", "team", "member", "hook", "secret", "runner", "check", "commit",
			"branch", "release", "asset", "gist", "org", "package", "project", "card", "column", "deployment"}
		return words[i%len(words)]
	}
	props := func(n int, refs []string) map[string]any {
		p := map[string]any{}
		for i := range n {
			switch i % 6 {
			case 0:
				p[fmt.Sprintf("id_%d", i)] = map[string]any{"type": "integer", "format": "int64", "example": 42, "description": "Unique identifier of the " + word(i) + "."}
			case 1:
				p[fmt.Sprintf("name_%d", i)] = map[string]any{"type": "string", "example": "octocat", "description": "The name of the " + word(i) + "."}
			case 2:
				p[fmt.Sprintf("url_%d", i)] = map[string]any{"type": "string", "format": "uri", "example": "https://api.github.com/repos/octocat/Hello-World"}
			case 3:
				p[fmt.Sprintf("flag_%d", i)] = map[string]any{"type": "boolean", "nullable": true}
			case 4:
				p[fmt.Sprintf("state_%d", i)] = map[string]any{"type": "string", "enum": []any{"open", "closed", "all"}}
			case 5:
				if len(refs) > 0 {
					p[fmt.Sprintf("ref_%d", i)] = map[string]any{"$ref": "#/components/schemas/" + refs[r.IntN(len(refs))]}
				} else {
					p[fmt.Sprintf("tags_%d", i)] = map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
				}
			}
		}
		return p
	}
	schemas := map[string]any{}
	schemas["simple-user"] = map[string]any{"type": "object", "title": "Simple User", "properties": props(20, nil), "required": []any{"id_0", "name_1"}}
	schemas["license"] = map[string]any{"type": "object", "nullable": true, "properties": props(8, nil)}
	repoProps := props(80, []string{"simple-user", "license"})
	repoProps["owner"] = map[string]any{"$ref": "#/components/schemas/simple-user"}
	repoProps["template_repository"] = map[string]any{"type": "object", "nullable": true, "properties": props(60, []string{"simple-user", "license"})}
	schemas["repository"] = map[string]any{"type": "object", "title": "Repository", "properties": repoProps}
	names := []string{"simple-user", "license", "repository"}
	for i := range 700 {
		name := fmt.Sprintf("%s-%d", word(i), i)
		p := props(12+i%20, names)
		p["owner"] = map[string]any{"$ref": "#/components/schemas/simple-user"}
		if i%3 == 0 {
			p["repository"] = map[string]any{"$ref": "#/components/schemas/repository"}
		}
		s := map[string]any{"type": "object", "properties": p, "required": []any{"owner"}}
		if i%10 == 0 {
			s = map[string]any{"allOf": []any{map[string]any{"$ref": "#/components/schemas/" + names[r.IntN(len(names))]}, s}}
		}
		schemas[name] = s
		names = append(names, name)
	}
	examples := map[string]any{}
	for i := range 400 {
		var items []any
		for j := range 12 {
			item := map[string]any{}
			for k := range 40 {
				item[fmt.Sprintf("field_%d", k)] = fmt.Sprintf("https://api.github.com/%s/%d/%d/%s", word(i+k), i, j, strings.Repeat("x", k%7))
			}
			items = append(items, item)
		}
		examples[fmt.Sprintf("example-%d", i)] = map[string]any{"value": items}
	}
	params := map[string]any{
		"owner":    map[string]any{"name": "owner", "in": "path", "required": true, "description": "The account owner.", "schema": map[string]any{"type": "string"}},
		"repo":     map[string]any{"name": "repo", "in": "path", "required": true, "description": "The name of the repository.", "schema": map[string]any{"type": "string"}},
		"per-page": map[string]any{"name": "per_page", "in": "query", "description": "Results per page (max 100).", "schema": map[string]any{"type": "integer", "default": 30}},
		"page":     map[string]any{"name": "page", "in": "query", "description": "Page number.", "schema": map[string]any{"type": "integer", "default": 1}},
		"accept":   map[string]any{"name": "accept", "in": "header", "schema": map[string]any{"type": "string"}},
	}
	ref := func(kind, name string) map[string]any {
		return map[string]any{"$ref": "#/components/" + kind + "/" + name}
	}
	paths := map[string]any{}
	methods := []string{"get", "post", "patch", "put", "delete"}
	odd := 0
	for i := 0; i < nOps; {
		base := fmt.Sprintf("/repos/{owner}/{repo}/%ss%d", word(i), i)
		item := map[string]any{}
		for _, m := range methods[:1+r.IntN(len(methods))] {
			if i >= nOps {
				break
			}
			schema := names[3+r.IntN(len(names)-3)]
			op := map[string]any{
				"operationId": fmt.Sprintf("%s/%s-%d", word(i), m, i),
				"summary":     fmt.Sprintf("%s a %s", m, word(i)),
				"description": strings.Repeat("Lists or changes things of the repository. ", 4),
				"tags":        []any{word(i)},
				"parameters":  []any{ref("parameters", "owner"), ref("parameters", "repo")},
				"responses": map[string]any{"200": map[string]any{"description": "Response", "content": map[string]any{"application/json": map[string]any{
					"schema":   map[string]any{"type": "array", "items": ref("schemas", schema)},
					"examples": map[string]any{"default": ref("examples", fmt.Sprintf("example-%d", r.IntN(400)))},
				}}}},
			}
			if m == "get" {
				op["parameters"] = append(op["parameters"].([]any), ref("parameters", "per-page"), ref("parameters", "page"), ref("parameters", "accept"))
			}
			if m == "post" || m == "patch" || m == "put" {
				var body map[string]any
				switch {
				case odd < 22 && i%9 == 0:
					// The shapes GitHub uses where a body is not an object
					// with properties.
					switch odd % 4 {
					case 0:
						body = map[string]any{"oneOf": []any{
							map[string]any{"type": "object", "properties": map[string]any{"labels": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}},
							map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string"}},
						}}
					case 1:
						body = map[string]any{"type": "array", "items": ref("schemas", schema)}
					case 2:
						body = map[string]any{"anyOf": []any{ref("schemas", schema), map[string]any{"type": "object", "required": []any{"names"}, "properties": map[string]any{"names": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}}}
					case 3:
						body = map[string]any{"type": "string", "description": "The raw text."}
					}
					odd++
				case i%10 == 0:
					// Some bodies reference component schemas, as GitHub's
					// do for a few endpoints.
					body = map[string]any{"type": "object", "properties": map[string]any{
						"title": map[string]any{"type": "string"}, "assignee": ref("schemas", "simple-user"),
						"item": ref("schemas", schema)}, "required": []any{"title"}}
				default:
					// Most GitHub request bodies are written inline.
					body = map[string]any{"type": "object", "properties": map[string]any{
						"title":     map[string]any{"type": "string", "description": "The title."},
						"body":      map[string]any{"type": "string", "description": "The contents."},
						"labels":    map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
						"assignees": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
						"milestone": map[string]any{"type": "integer", "nullable": true},
						"state":     map[string]any{"type": "string", "enum": []any{"open", "closed"}},
					}, "required": []any{"title"}}
				}
				op["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": body}}}
			}
			path := base
			if m != "get" && m != "post" {
				path = base + "/{id}"
				op["parameters"] = append(op["parameters"].([]any), map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "integer"}})
			}
			if paths[path] == nil {
				paths[path] = map[string]any{}
			}
			paths[path].(map[string]any)[m] = op
			i++
		}
		_ = item
	}
	doc := map[string]any{
		"openapi":    "3.0.3",
		"info":       map[string]any{"title": "GitHub-like REST API", "version": "1.1.4"},
		"servers":    []any{map[string]any{"url": "https://api.github.com"}},
		"paths":      paths,
		"components": map[string]any{"schemas": schemas, "parameters": params, "examples": examples},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	largeOnce sync.Once
	largeDoc  []byte
)

func largeDocument() []byte {
	largeOnce.Do(func() { largeDoc = githubLike(1223) })
	return largeDoc
}

// peakHeap runs f while sampling the live heap, and returns the highest
// HeapAlloc seen above the level before f (GC forced first).
func peakHeap(f func()) (peak uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var max atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > max.Load() {
					max.Store(m.HeapAlloc)
				}
			}
		}
	}()
	f()
	close(stop)
	<-done
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > max.Load() {
		max.Store(ms.HeapAlloc)
	}
	if max.Load() < base {
		return 0
	}
	return max.Load() - base
}

// importLarge is what `stoa apply` does with a Tool naming the document:
// parse, convert every operation, store the raw document.
func importLarge(t testing.TB, raw []byte) (*spec.Object, []string) {
	doc, err := Parse(context.Background(), raw, "github.json", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obj, warns, err := doc.Tool(ImportOptions{Tenant: "gh", Name: "github"})
	if err != nil {
		t.Fatal(err)
	}
	return obj, warns
}

// TestLargeDocument imports a GitHub-sized document: every operation is
// imported (non-object JSON bodies as one `body` argument), and the peak
// heap stays under ten times the document's size.
func TestLargeDocument(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a GitHub-sized import (13 MB): not with -short or -race, whose overhead makes heap figures meaningless")
	}
	raw := largeDocument()
	var obj *spec.Object
	var warns []string
	peak := peakHeap(func() { obj, warns = importLarge(t, raw) })
	ops := obj.Spec.(*spec.ToolSpec).Operations
	t.Logf("document %.1f MB, %d operations imported, peak heap %.0f MB (%.1f× the document), %d warnings",
		float64(len(raw))/1e6, len(ops), float64(peak)/1e6, float64(peak)/float64(len(raw)), len(warns))
	for _, w := range warns {
		if strings.Contains(w, "skipped") {
			t.Errorf("warning: %s", w)
		}
	}
	if len(ops) != 1223 {
		t.Errorf("%d operations imported, want 1223", len(ops))
	}
	if peak > 10*uint64(len(raw)) {
		t.Errorf("peak heap %d bytes, more than ten times the %d-byte document", peak, len(raw))
	}
	// The result is a Tool stoad accepts: it validates and every
	// operation compiles into an MCP tool ($defs, payload bodies).
	spec.Default(obj)
	if diags := spec.Validate([]*spec.Object{obj}, spec.ValidateOptions{SkipReferences: true}); diags.HasErrors() {
		t.Fatalf("the imported Tool is invalid: %v", diags)
	}
	// Compiling all 1,223 validators takes long under -race: the payload
	// operations and every tenth other one.
	payload := 0
	sample := *obj
	ts := *obj.Spec.(*spec.ToolSpec)
	ts.Operations = nil
	for i, op := range ops {
		if op.In["body"] == "payload" {
			payload++
			ts.Operations = append(ts.Operations, op)
		} else if i%10 == 0 {
			ts.Operations = append(ts.Operations, op)
		}
	}
	sample.Spec = &ts
	if _, err := mcp.BuildCatalog(1, []*spec.Object{&sample}); err != nil {
		t.Fatal(err)
	}
	if payload != 22 {
		t.Errorf("%d operations take their body as one argument, want 22", payload)
	}
}

// BenchmarkImportLarge reports the time and peak heap of importing the
// GitHub-sized document.
func BenchmarkImportLarge(b *testing.B) {
	raw := largeDocument()
	var peak uint64
	b.ReportAllocs()
	for b.Loop() {
		if p := peakHeap(func() { importLarge(b, raw) }); p > peak {
			peak = p
		}
	}
	b.ReportMetric(float64(peak)/1e6, "peak-MB")
	b.ReportMetric(float64(len(raw))/1e6, "doc-MB")
}

// TestLargeDocumentPhases reports the peak heap of each import phase
// (run with -v; a diagnostic, not an assertion).
func TestLargeDocumentPhases(t *testing.T) {
	if testing.Short() || raceEnabled || !testing.Verbose() {
		t.Skip("diagnostic: run with -v, without -race")
	}
	raw := largeDocument()
	var doc *Document
	t.Logf("parse: %.0f MB", float64(peakHeap(func() {
		var err error
		if doc, err = Parse(context.Background(), raw, "github.json", LoadOptions{}); err != nil {
			t.Fatal(err)
		}
	}))/1e6)
	t.Logf("operations: %.0f MB", float64(peakHeap(func() { doc.Operations(Filter{}) }))/1e6)
	t.Logf("store document: %.0f MB", float64(peakHeap(func() { encodeDocument(doc.Raw) }))/1e6)
}
