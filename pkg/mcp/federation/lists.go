package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
)

// Tool is one exposed upstream tool. Tools are immutable.
type Tool struct {
	// Name is the catalog name: {tenant}__{tool}__{upstream name or rename}.
	Name string
	// UpstreamName is the tool's name at the upstream (what Call takes).
	UpstreamName string
	Title        string
	Description  string
	// InputSchema and OutputSchema are the upstream's JSON Schemas,
	// verbatim (InputSchema defaults to {"type":"object"}).
	InputSchema  json.RawMessage
	OutputSchema json.RawMessage
	// Annotations are the upstream's hints, unset ones nil.
	Annotations Annotations

	// paramHeaders are the x-mcp-header bindings of InputSchema.
	paramHeaders []paramBinding
	// callPrefix is `"name":"<upstream name>","arguments":`, encoded once.
	callPrefix []byte
}

// Annotations are MCP tool hints as the upstream sent them.
type Annotations struct {
	Title       string `json:"title,omitempty"`
	ReadOnly    *bool  `json:"readOnlyHint,omitempty"`
	Destructive *bool  `json:"destructiveHint,omitempty"`
	Idempotent  *bool  `json:"idempotentHint,omitempty"`
	OpenWorld   *bool  `json:"openWorldHint,omitempty"`
}

// Resource is one exposed upstream resource.
type Resource struct {
	// URI is the namespaced URI: ResourcePrefix(tenant, tool) + UpstreamURI.
	URI         string
	UpstreamURI string
	Name        string
	Title       string
	Description string
	MimeType    string
	Size        *int64
}

// wireTool is a tools/list entry.
type wireTool struct {
	Name         string          `json:"name"`
	Title        string          `json:"title"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"inputSchema"`
	OutputSchema json.RawMessage `json:"outputSchema"`
	Annotations  *Annotations    `json:"annotations"`
}

type wireResource struct {
	URI         string `json:"uri"`
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description"`
	MimeType    string `json:"mimeType"`
	Size        *int64 `json:"size"`
}

// view is what an Upstream exposes, rebuilt whenever the upstream's lists
// or the filters change.
type view struct {
	tools      []Tool
	byUpstream map[string]*Tool
	resources  []Resource
	resources_ map[string]bool // upstream URIs
	problems   []string
	digest     uint64
}

var emptyView = &view{byUpstream: map[string]*Tool{}, resources_: map[string]bool{}}

// maxPages bounds one list walk (cursor loops, endless servers).
const maxPages = 1000

// listAll walks a paginated list method.
func listAll[T any](ctx context.Context, t transport, method, member string, limit int) ([]T, bool, error) {
	var out []T
	cursor := ""
	seen := map[string]bool{}
	for page := 0; page < maxPages; page++ {
		r := request{method: method}
		if cursor != "" {
			r.inner = append([]byte(`"cursor":`), strconv.Quote(cursor)...)
		}
		raw, err := t.call(ctx, &r)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", method, err)
		}
		var res map[string]json.RawMessage
		if err := json.Unmarshal(raw, &res); err != nil {
			return nil, false, fmt.Errorf("%s: decode result: %w", method, err)
		}
		var items []T
		if len(res[member]) > 0 {
			if err := json.Unmarshal(res[member], &items); err != nil {
				return nil, false, fmt.Errorf("%s: decode %s: %w", method, member, err)
			}
		}
		out = append(out, items...)
		if len(out) >= limit {
			return out[:limit], true, nil
		}
		cursor = ""
		if c := res["nextCursor"]; len(c) > 0 && string(c) != "null" {
			if err := json.Unmarshal(c, &cursor); err != nil {
				return nil, false, fmt.Errorf("%s: decode nextCursor: %w", method, err)
			}
		}
		if cursor == "" || seen[cursor] {
			return out, false, nil
		}
		seen[cursor] = true
	}
	return out, true, nil
}

// buildView applies cfg's filters and renames to the upstream's lists.
func buildView(cfg *Config, tools []wireTool, resources []wireResource, truncated bool, limit int) *view {
	v := &view{byUpstream: map[string]*Tool{}, resources_: map[string]bool{}}
	if truncated {
		v.problems = append(v.problems, fmt.Sprintf("the upstream lists more than %d tools or resources; the rest are ignored", limit))
	}
	sort.SliceStable(tools, func(i, j int) bool { return tools[i].Name < tools[j].Name })
	used := map[string]string{}
	known := map[string]bool{}
	for i := range tools {
		w := &tools[i]
		known[w.Name] = true
		if w.Name == "" {
			v.problems = append(v.problems, "the upstream lists a tool without a name; it is ignored")
			continue
		}
		if v.byUpstream[w.Name] != nil {
			v.problems = append(v.problems, fmt.Sprintf("the upstream lists tool %q twice; the first is used", w.Name))
			continue
		}
		if !cfg.Tools.Admits(w.Name) {
			continue
		}
		name, problem := ExposedName(cfg.Tenant, cfg.Tool, w.Name, cfg.Tools.Rename)
		if problem != "" {
			v.problems = append(v.problems, problem)
		}
		if prev, ok := used[name]; ok {
			v.problems = append(v.problems, fmt.Sprintf("upstream tools %q and %q are both exposed as %q; %q is hidden. Rename one with tools.rename",
				prev, w.Name, name, w.Name))
			continue
		}
		used[name] = w.Name
		schema := bytes.TrimSpace(w.InputSchema)
		if len(schema) == 0 || string(schema) == "null" {
			schema = []byte(`{"type":"object"}`)
		}
		if schema[0] != '{' {
			v.problems = append(v.problems, fmt.Sprintf("upstream tool %q has an input schema that is not an object; it is hidden", w.Name))
			continue
		}
		t := Tool{
			Name:         name,
			UpstreamName: w.Name,
			Title:        w.Title,
			Description:  w.Description,
			InputSchema:  json.RawMessage(schema),
			OutputSchema: w.OutputSchema,
		}
		if w.Annotations != nil {
			t.Annotations = *w.Annotations
		}
		t.paramHeaders = paramBindings(schema)
		t.callPrefix = append(append([]byte(`"name":`), strconv.Quote(w.Name)...), `,"arguments":`...)
		v.tools = append(v.tools, t)
	}
	sort.Slice(v.tools, func(i, j int) bool { return v.tools[i].Name < v.tools[j].Name })
	for i := range v.tools {
		v.byUpstream[v.tools[i].UpstreamName] = &v.tools[i]
	}
	olds := make([]string, 0, len(cfg.Tools.Rename))
	for old := range cfg.Tools.Rename {
		olds = append(olds, old)
	}
	sort.Strings(olds)
	for _, old := range olds {
		if !known[old] {
			v.problems = append(v.problems, fmt.Sprintf("tools.rename names %q, which the upstream does not list", old))
		}
	}
	if cfg.Resources.Expose {
		prefix := ResourcePrefix(cfg.Tenant, cfg.Tool)
		sort.SliceStable(resources, func(i, j int) bool { return resources[i].URI < resources[j].URI })
		for _, r := range resources {
			if r.URI == "" || v.resources_[r.URI] || !cfg.Resources.Admits(r.URI) {
				continue
			}
			v.resources_[r.URI] = true
			v.resources = append(v.resources, Resource{
				URI: prefix + r.URI, UpstreamURI: r.URI, Name: r.Name, Title: r.Title,
				Description: r.Description, MimeType: r.MimeType, Size: r.Size,
			})
		}
	}
	h := fnv.New64a()
	for _, t := range v.tools {
		for _, s := range []string{t.Name, t.UpstreamName, t.Title, t.Description, string(t.InputSchema), string(t.OutputSchema)} {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		a, _ := json.Marshal(t.Annotations)
		h.Write(a)
	}
	h.Write([]byte{1})
	for _, r := range v.resources {
		for _, s := range []string{r.URI, r.Name, r.Title, r.Description, r.MimeType} {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
	}
	v.digest = h.Sum64()
	return v
}

// paramBinding is one x-mcp-header annotation (2026-07-28): the argument at
// path is mirrored into header.
type paramBinding struct {
	path   []string
	header string
}

type schemaProps struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Header     string                     `json:"x-mcp-header"`
}

// paramBindings collects the x-mcp-header annotations reachable from the
// schema root through "properties".
func paramBindings(schema []byte) []paramBinding {
	if !bytes.Contains(schema, []byte("x-mcp-header")) {
		return nil
	}
	var out []paramBinding
	var walk func(raw json.RawMessage, path []string, depth int)
	walk = func(raw json.RawMessage, path []string, depth int) {
		var s schemaProps
		if depth > 16 || json.Unmarshal(raw, &s) != nil {
			return
		}
		if s.Header != "" && len(path) > 0 && isToken(s.Header) {
			out = append(out, paramBinding{path: append([]string(nil), path...), header: "Mcp-Param-" + s.Header})
		}
		names := make([]string, 0, len(s.Properties))
		for n := range s.Properties {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			walk(s.Properties[n], append(path, n), depth+1)
		}
	}
	walk(schema, nil, 0)
	return out
}

// paramHeaderValues computes the Mcp-Param-* headers of a call: string,
// boolean and integer arguments, Base64-wrapped when not plain ASCII.
func paramHeaderValues(bindings []paramBinding, args []byte) []header {
	var root map[string]json.RawMessage
	if json.Unmarshal(args, &root) != nil {
		return nil
	}
	var out []header
	for _, b := range bindings {
		cur := root
		var val json.RawMessage
		for i, k := range b.path {
			v, ok := cur[k]
			if !ok {
				break
			}
			if i == len(b.path)-1 {
				val = v
				break
			}
			cur = nil
			if json.Unmarshal(v, &cur) != nil {
				break
			}
		}
		if len(val) == 0 || string(val) == "null" {
			continue
		}
		var s string
		switch val[0] {
		case '"':
			if json.Unmarshal(val, &s) != nil {
				continue
			}
		case 't', 'f':
			s = string(val)
		default:
			n, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil {
				continue
			}
			s = strconv.FormatInt(n, 10)
		}
		out = append(out, header{name: b.header, value: headerValue(s)})
	}
	return out
}

// rewriteResourceURIs namespaces the uri members of a resources/read
// result's contents so callers see the URIs they can read back.
func rewriteResourceURIs(raw json.RawMessage, prefix string) (json.RawMessage, error) {
	var res map[string]json.RawMessage
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, err
	}
	var contents []map[string]json.RawMessage
	if c := res["contents"]; len(c) > 0 {
		if err := json.Unmarshal(c, &contents); err != nil {
			return nil, err
		}
	}
	for _, c := range contents {
		var uri string
		if json.Unmarshal(c["uri"], &uri) == nil && uri != "" && !strings.HasPrefix(uri, prefix) {
			c["uri"], _ = json.Marshal(prefix + uri)
		}
	}
	b, err := json.Marshal(contents)
	if err != nil {
		return nil, err
	}
	res["contents"] = b
	return json.Marshal(res)
}
