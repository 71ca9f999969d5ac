package openapi

import (
	"fmt"
	"maps"
	"net/textproto"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Filter selects operations. Empty lists select everything.
type Filter struct {
	// Tags keeps operations carrying at least one of these tags.
	Tags []string
	// Operations keeps operations whose operationId or generated name is
	// listed.
	Operations []string
}

// Imported is one converted operation.
type Imported struct {
	Op spec.Operation
	// OperationID is the document's operationId ("" when absent).
	OperationID string
}

// methodOrder is the order of operations within one path.
var methodOrder = []string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH"}

// ignoredHeaders are header parameters OpenAPI says to ignore (Accept,
// Content-Type, Authorization) or that stoa never sets from arguments.
var ignoredHeaders = map[string]bool{
	"Accept": true, "Content-Type": true, "Authorization": true, "Host": true, "Content-Length": true,
	"Transfer-Encoding": true, "Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true,
	"Upgrade": true, "Proxy-Authorization": true, "Proxy-Connection": true, "Expect": true,
}

// Operations converts the document's operations (paths sorted, methods in
// GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH order) that pass f. The
// warnings name operations that were skipped or changed.
func (d *Document) Operations(f Filter) ([]Imported, []string) {
	var out []Imported
	var warns []string
	taken := map[string]bool{}
	if d.T.Paths == nil {
		return nil, nil
	}
	paths := d.T.Paths.Keys()
	sort.Strings(paths)
	for _, path := range paths {
		item := d.T.Paths.Value(path)
		if item == nil {
			continue
		}
		ops := item.Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, strings.ToUpper(m))
		}
		sort.Slice(methods, func(i, j int) bool { return methodRank(methods[i]) < methodRank(methods[j]) })
		for _, method := range methods {
			op := ops[method]
			if op == nil {
				op = item.GetOperation(method)
			}
			if op == nil {
				continue
			}
			where := method + " " + path
			if !slices.Contains(methodOrder, method) {
				warns = append(warns, fmt.Sprintf("%s: skipped: method %s is not supported", where, method))
				continue
			}
			name := snake(op.OperationID)
			if name == "" {
				name = methodPathName(method, path)
			}
			if !f.match(op, name) {
				continue
			}
			name = uniqueName(name, taken)
			imp, w := d.convertOp(method, path, item, op, name)
			for _, x := range w {
				warns = append(warns, where+": "+x)
			}
			if imp != nil {
				out = append(out, *imp)
			}
		}
	}
	return out, warns
}

func methodRank(m string) int {
	if i := slices.Index(methodOrder, m); i >= 0 {
		return i
	}
	return len(methodOrder)
}

func (f Filter) match(op *openapi3.Operation, name string) bool {
	if len(f.Tags) > 0 {
		ok := false
		for _, t := range op.Tags {
			if slices.Contains(f.Tags, t) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(f.Operations) > 0 {
		return slices.Contains(f.Operations, op.OperationID) || slices.Contains(f.Operations, name)
	}
	return true
}

// convertOp builds one operation: arguments from path, query and header
// parameters and the members of a JSON object request body, with `in`
// overrides where stoa's default placement would differ.
func (d *Document) convertOp(method, path string, item *openapi3.PathItem, op *openapi3.Operation, name string) (*Imported, []string) {
	var warns []string
	c := newSchemaConverter(d.refForms())
	var deps []string
	c.deps = &deps
	props := map[string]any{}
	var required []any
	in := map[string]string{}
	defaultLoc := "query"
	if method == "POST" || method == "PUT" || method == "PATCH" {
		defaultLoc = "body"
	}
	add := func(prop string, schema map[string]any, req bool, loc string) bool {
		if _, dup := props[prop]; dup {
			warns = append(warns, fmt.Sprintf("%s argument %q is already a parameter; the parameter wins", loc, prop))
			return false
		}
		props[prop] = schema
		if req {
			required = append(required, prop)
		}
		if loc != "path" && loc != defaultLoc {
			in[prop] = loc
		}
		return true
	}

	// Parameters: the operation's override the path item's (same name and in).
	params := map[[2]string]*openapi3.Parameter{}
	var order [][2]string
	for _, list := range []openapi3.Parameters{item.Parameters, op.Parameters} {
		for _, pr := range list {
			if pr == nil || pr.Value == nil {
				continue
			}
			k := [2]string{pr.Value.In, pr.Value.Name}
			if _, seen := params[k]; !seen {
				order = append(order, k)
			}
			params[k] = pr.Value
		}
	}
	rank := map[string]int{"path": 0, "query": 1, "header": 2, "cookie": 3}
	sort.SliceStable(order, func(i, j int) bool { return rank[order[i][0]] < rank[order[j][0]] })
	for _, k := range order {
		p := params[k]
		schema := c.paramSchema(p)
		switch p.In {
		case "path":
			if !strings.Contains(path, "{"+p.Name+"}") {
				warns = append(warns, fmt.Sprintf("path parameter %q is not in the path; ignored", p.Name))
				continue
			}
			add(p.Name, schema, true, "path")
		case "query":
			add(p.Name, schema, p.Required, "query")
		case "header":
			canon := textproto.CanonicalMIMEHeaderKey(p.Name)
			if ignoredHeaders[canon] {
				continue
			}
			add(p.Name, schema, p.Required, "header")
		case "cookie":
			warns = append(warns, fmt.Sprintf("cookie parameter %q is not supported; ignored", p.Name))
		}
	}
	// Every path placeholder must be an argument.
	for _, ph := range placeholders(path) {
		if _, ok := props[ph]; !ok {
			warns = append(warns, fmt.Sprintf("path placeholder {%s} has no parameter; added as a string", ph))
			add(ph, map[string]any{"type": "string"}, true, "path")
		}
	}

	// The request body: the members of a JSON object become arguments.
	var extra any
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		mt := jsonMedia(rb.Value.Content)
		switch {
		case mt == nil && rb.Value.Required:
			return nil, append(warns, "skipped: the request body is not JSON ("+strings.Join(mediaTypes(rb.Value.Content), ", ")+")")
		case mt == nil:
			warns = append(warns, "the optional non-JSON request body is left out")
		default:
			// The body's own schema is read inline even when it is a large
			// $ref: its members become arguments.
			top := mt.Schema
			if top != nil && top.Ref != "" {
				top = &openapi3.SchemaRef{Value: top.Value}
			}
			body := maps.Clone(c.convert(top)) // shared: copied before adding to it
			members, req, ap, ok := flattenObject(body, c.forms.byName)
			if !ok {
				// An array, oneOf/anyOf, scalar or member-less object: the
				// whole body is one argument (in: payload) with its schema.
				arg := "body"
				for i := 2; ; i++ {
					if _, taken := props[arg]; !taken {
						break
					}
					arg = "body_" + itoa(i)
				}
				if _, has := body["description"]; !has {
					if d := strings.TrimSpace(rb.Value.Description); d != "" {
						body["description"] = d
					} else {
						body["description"] = "The JSON request body."
					}
				}
				add(arg, body, rb.Value.Required, "payload")
				break
			}
			names := make([]string, 0, len(members))
			for n := range members {
				names = append(names, n)
			}
			sort.Strings(names)
			reqSet := map[string]bool{}
			for _, r := range req {
				reqSet[r] = true
			}
			for _, n := range names {
				add(n, members[n].(map[string]any), rb.Value.Required && reqSet[n], "body")
			}
			extra = ap
		}
	}

	if c.truncated {
		warns = append(warns, "the input schema is too deep; parts of it accept any value")
	}
	input := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		input["required"] = required
	}
	if extra != nil {
		input["additionalProperties"] = extra
	}
	if defs := c.forms.defs(deps); len(defs) > 0 {
		input["$defs"] = defs
	}
	input, w := c.forms.fitInput(name, input)
	if w != "" {
		warns = append(warns, w)
	}
	o := spec.Operation{
		Name:        name,
		Title:       strings.TrimSpace(op.Summary),
		Method:      method,
		Path:        path,
		Description: strings.TrimSpace(op.Description),
		Tags:        cleanTags(op.Tags),
		Input:       input,
	}
	if o.Description == "" {
		o.Description = o.Title
	}
	if op.Deprecated {
		o.Description = strings.TrimSpace("Deprecated. " + o.Description)
	}
	if len(in) > 0 {
		o.In = in
	}
	if v, ok := op.Extensions["x-mcp-name"].(string); ok && v != "" {
		o.MCPName = v
	}
	o.Annotations = annotationsFor(method)
	return &Imported{Op: o, OperationID: op.OperationID}, warns
}

// paramSchema is a parameter's schema with its description.
func (c *schemaConverter) paramSchema(p *openapi3.Parameter) map[string]any {
	var s map[string]any
	switch {
	case p.Schema != nil:
		s = maps.Clone(c.convert(p.Schema)) // shared: copied before adding to it
	case jsonMedia(p.Content) != nil:
		s = maps.Clone(c.convert(jsonMedia(p.Content).Schema))
	default:
		s = map[string]any{"type": "string"}
	}
	if p.Description != "" {
		if _, ok := s["description"]; !ok {
			s["description"] = strings.TrimSpace(p.Description)
		}
	}
	if p.Deprecated {
		s["deprecated"] = true
	}
	return s
}

// flattenObject returns the properties, required names and
// additionalProperties of an object schema, merging allOf members (read
// through def for members that are $defs references).
func flattenObject(s map[string]any, def func(ref string) map[string]any) (props map[string]any, req []string, ap any, ok bool) {
	props = map[string]any{}
	var walk func(m map[string]any, depth int) bool
	walk = func(m map[string]any, depth int) bool {
		if depth > 8 {
			return false
		}
		if r, isRef := m["$ref"].(string); isRef && len(m) == 1 {
			d := def(r)
			return d != nil && walk(d, depth+1)
		}
		if t, has := m["type"]; has && t != "object" {
			return false
		}
		if _, has := m["oneOf"]; has {
			return false
		}
		if _, has := m["anyOf"]; has {
			return false
		}
		found := false
		if p, has := m["properties"].(map[string]any); has {
			for k, v := range p {
				if _, dup := props[k]; !dup {
					props[k] = v
				}
			}
			found = true
		}
		if r, has := m["required"].([]any); has {
			for _, x := range r {
				if s, isStr := x.(string); isStr {
					req = append(req, s)
				}
			}
		}
		if a, has := m["additionalProperties"]; has && a != false {
			ap, found = a, true
		}
		if all, has := m["allOf"].([]any); has {
			for _, x := range all {
				sub, isMap := x.(map[string]any)
				if !isMap || !walk(sub, depth+1) {
					return false
				}
			}
			found = true
		}
		return found
	}
	ok = walk(s, 0) && (len(props) > 0 || ap != nil)
	return props, req, ap, ok
}

// jsonMedia picks the JSON media type of a content map.
func jsonMedia(c openapi3.Content) *openapi3.MediaType {
	if mt := c.Get("application/json"); mt != nil {
		return mt
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		base := strings.TrimSpace(strings.SplitN(k, ";", 2)[0])
		if strings.HasSuffix(base, "+json") || base == "*/*" {
			return c[k]
		}
	}
	return nil
}

func mediaTypes(c openapi3.Content) []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// placeholders lists the {name} placeholders of a path template.
func placeholders(path string) []string {
	var out []string
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(path[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, path[i+1:i+j])
		path = path[i+j+1:]
	}
}

// cleanTags keeps tags stoa accepts.
func cleanTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// annotationsFor derives the MCP hints from the method, as spec.Default
// does, but written out so the imported spec says what it means.
func annotationsFor(method string) *spec.Annotations {
	b := func(v bool) *bool { return &v }
	a := &spec.Annotations{OpenWorld: b(true)}
	switch method {
	case "GET", "HEAD", "OPTIONS":
		a.ReadOnly, a.Destructive, a.Idempotent = b(true), b(false), b(true)
	case "PUT":
		a.ReadOnly, a.Destructive, a.Idempotent = b(false), b(false), b(true)
	case "DELETE":
		a.ReadOnly, a.Destructive, a.Idempotent = b(false), b(true), b(true)
	default:
		a.ReadOnly, a.Destructive, a.Idempotent = b(false), b(false), b(false)
	}
	return a
}
