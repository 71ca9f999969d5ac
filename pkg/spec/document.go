package spec

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	yaml "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// envelopeFields are the keys of an object document.
var envelopeFields = []string{"apiVersion", "kind", "metadata", "spec"}

// kindNames lists the kinds as strings, for suggestions.
func kindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = string(k)
	}
	return out
}

// ListKind is the kind of a kubectl-style list document, whose items are
// objects: `stoa get -o yaml` prints one and `stoa apply -f -` reads it.
const ListKind = "List"

// listAPIVersions are the apiVersions a List may have: kubectl writes v1.
var listAPIVersions = []string{"v1", APIVersion}

// decodeDocument turns one YAML document into its objects: one object, or
// the items of a List, each with its own position. Documents that cannot
// be an object at all (not a mapping, unknown kind) give none.
func decodeDocument(c chunk, index int, body ast.Node) ([]*Object, Diagnostics) {
	return decodeDocumentIn(c, index, body, nil)
}

// decodeDocumentIn is decodeDocument reusing the path buffer of arena (nil:
// a private one).
func decodeDocumentIn(c chunk, index int, body ast.Node, arena *fastArena) ([]*Object, Diagnostics) {
	doc := &docState{file: c.file, base: c.base, start: c.start, end: c.end, index: index}
	d := &decoder{doc: doc, ast: &docAST{root: body}, budget: genericBudget(c.end - c.start)}
	if arena != nil {
		d.path = arena.path[:0]
		defer func() { arena.path = d.path[:0] }()
	}
	n, _ := d.unwrap(body)
	if n == nil {
		return nil, d.diags
	}
	if d.kindOf(n) == ListKind {
		return d.list(n), d.diags
	}
	if o := d.object(n, ""); o != nil {
		return []*Object{o}, d.diags
	}
	return nil, d.diags
}

// kindOf returns the kind a mapping names, "" when it names none.
func (d *decoder) kindOf(n ast.Node) string {
	values, ok := mappingValues(n)
	if !ok {
		return ""
	}
	for _, mv := range values {
		if k, ok := keyText(mv.Key); ok && k == "kind" {
			s, _ := scalarString(d.ast.resolve(mv.Value, 0), false)
			return s
		}
	}
	return ""
}

// list decodes a List document: its items become objects.
func (d *decoder) list(n ast.Node) []*Object {
	ents, _ := d.entries(n)
	var items ast.Node
	seen := map[string]bool{}
	for i := 0; i < ents.len(); i++ {
		e := ents.at(i)
		k, ok := keyText(e.mv.Key)
		if !ok {
			d.report(e.mv.Key, "mapping keys must be strings", "")
			continue
		}
		if seen[k] {
			if !e.merged {
				d.report(e.mv.Key, fmt.Sprintf("duplicate key %q", k), "remove one of the two entries")
			}
			continue
		}
		seen[k] = true
		switch k {
		case "kind":
		case "apiVersion":
			v, _ := d.unwrap(e.mv.Value)
			if s, ok := scalarString(v, false); !ok || !slices.Contains(listAPIVersions, s) {
				d.report(e.mv.Value, fmt.Sprintf("unknown apiVersion %s for a List", describe(v)),
					"a List has apiVersion v1 (as kubectl writes it) or "+APIVersion)
			}
		case "metadata":
			// kubectl writes {resourceVersion: ""}; a List's metadata says
			// nothing about its items.
			if v, _ := d.unwrap(e.mv.Value); v != nil && !isNull(v) {
				if _, ok := mappingValues(v); !ok {
					d.report(e.mv.Value, "wrong type for metadata: expected a mapping, got "+describe(v), "")
				}
			}
		case "items":
			items = e.mv.Value
		default:
			if e.merged {
				continue
			}
			d.report(e.mv.Key, fmt.Sprintf("unknown field %q in List", k), "a List has apiVersion, kind, metadata and items")
		}
	}
	if !seen["apiVersion"] {
		d.report(n, "missing apiVersion", "a List has apiVersion v1 (as kubectl writes it) or "+APIVersion)
	}
	if items == nil {
		d.report(n, "missing items", "a List holds its objects under items: [...]")
		return nil
	}
	v, _ := d.unwrap(items)
	if v == nil || isNull(v) {
		return nil
	}
	seq, ok := v.(*ast.SequenceNode)
	if !ok {
		d.report(v, "wrong type for items: expected a list of objects, got "+describe(v), "")
		return nil
	}
	var out []*Object
	for i, item := range seq.Values {
		it, _ := d.unwrap(item)
		if it == nil {
			continue
		}
		if d.kindOf(it) == ListKind {
			d.report(it, "a List cannot contain another List", "put the inner List's items in the outer one")
			continue
		}
		if o := d.object(it, itemPath("items", i)); o != nil {
			out = append(out, o)
		}
	}
	return out
}

// object decodes the mapping n into an Object; prefix is n's path in its
// document ("" for a whole document, "items[3]" in a List). It returns nil
// when n cannot be an object (not a mapping, unknown kind).
func (d *decoder) object(n ast.Node, prefix string) *Object {
	doc := d.doc
	f := doc.file
	first := len(d.diags)
	d.path, d.kind = d.path[:0], ""
	bad := []string(nil)
	d.bad = &bad
	defer func() { d.bad = nil }()
	ents, ok := d.entries(n)
	if !ok {
		d.report(n, "a document must be a mapping with apiVersion, kind, metadata and spec, got "+describe(n), "")
		return nil
	}
	var fields [4]*ast.MappingValueNode
	for i := 0; i < ents.len(); i++ {
		e := ents.at(i)
		k, ok := keyText(e.mv.Key)
		if !ok {
			d.report(e.mv.Key, "mapping keys must be strings", "")
			continue
		}
		i := slices.Index(envelopeFields, k)
		if i < 0 {
			if e.merged {
				continue
			}
			d.push(pathSeg{key: k, index: -1})
			hint := ""
			if k == "status" {
				hint = "status is reported by stoa, not written in specs; remove it"
			} else if s := suggest(k, envelopeFields); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
				bad = append(bad, s)
			} else {
				hint = "an object has apiVersion, kind, metadata and spec"
			}
			d.report(e.mv.Key, fmt.Sprintf("unknown field %q in object", k), hint)
			d.pop()
			continue
		}
		if fields[i] != nil {
			if !e.merged {
				d.push(pathSeg{key: k, index: -1})
				d.report(e.mv.Key, fmt.Sprintf("duplicate key %q", k), "remove one of the two entries")
				d.pop()
			}
			continue
		}
		fields[i] = e.mv
	}
	apiN, kindN, metaN, specN := fields[0], fields[1], fields[2], fields[3]
	obj := &Object{}
	known := false
	if kindN == nil {
		d.push(pathSeg{key: "kind", index: -1})
		d.report(n, "missing kind", "add a kind: one of "+strings.Join(kindNames(), ", "))
		d.pop()
	} else {
		var s string
		d.push(pathSeg{key: "kind", index: -1})
		before := len(d.diags)
		d.value(kindN.Value, reflect.ValueOf(&s).Elem(), 0)
		switch k := Kind(s); {
		case len(d.diags) > before:
		case k.Order() < len(Kinds):
			obj.Kind, known = k, true
		case s == "":
			d.report(kindN.Key, "missing kind", "add a kind: one of "+strings.Join(kindNames(), ", "))
		default:
			hint := "known kinds: " + strings.Join(kindNames(), ", ")
			if pk, ok := ParseKind(s); ok {
				hint = fmt.Sprintf("did you mean %q?", pk)
			} else if sg := suggest(s, kindNames()); sg != "" {
				hint = fmt.Sprintf("did you mean %q? %s", sg, hint)
			}
			d.report(kindN.Value, fmt.Sprintf("unknown kind %q", s), hint)
		}
		d.pop()
	}
	d.kind = obj.Kind

	if apiN == nil {
		d.push(pathSeg{key: "apiVersion", index: -1})
		d.report(n, "missing apiVersion", "add apiVersion: "+APIVersion)
		d.markBad("")
		d.pop()
	} else {
		d.push(pathSeg{key: "apiVersion", index: -1})
		before := len(d.diags)
		d.value(apiN.Value, reflect.ValueOf(&obj.APIVersion).Elem(), 0)
		if len(d.diags) == before && !slices.Contains(SupportedAPIVersions, obj.APIVersion) {
			d.markBad("")
			if obj.APIVersion == "" {
				d.report(apiN.Key, "missing apiVersion", "add apiVersion: "+APIVersion)
			} else {
				d.report(apiN.Value, fmt.Sprintf("unknown apiVersion %q", obj.APIVersion),
					"supported: "+strings.Join(SupportedAPIVersions, ", "))
			}
		}
		d.pop()
	}

	if metaN == nil {
		d.push(pathSeg{key: "metadata", index: -1})
		d.report(n, "missing metadata", "add metadata with at least a name")
		d.markBad("")
		d.pop()
	} else {
		d.push(pathSeg{key: "metadata", index: -1})
		before := len(d.diags)
		d.value(metaN.Value, reflect.ValueOf(&obj.Metadata).Elem(), 0)
		if obj.Metadata.Name == "" && len(d.diags) == before {
			d.push(pathSeg{key: "name", index: -1})
			d.report(metaN.Key, "missing metadata.name", "every object needs a name")
			d.markBad("")
			d.pop()
		}
		d.pop()
	}

	if known {
		s := NewSpec(obj.Kind)
		if specN != nil {
			d.push(pathSeg{key: "spec", index: -1})
			d.value(specN.Value, reflect.ValueOf(s).Elem(), 0)
			d.pop()
		}
		obj.Spec = s
	}

	line, col := doc.pos(nodeStart(n))
	line, col, _ = f.clamp(line, col)
	obj.Source = &Source{File: f.name, Line: line, Column: col, doc: doc, prefix: prefix, bad: bad}
	if known && obj.Metadata.Name != "" {
		ref := obj.Ref()
		for _, x := range d.diags[first:] {
			x.Object = &ref
		}
	}
	if !known {
		return nil
	}
	return obj
}

// syntaxDiagnostic turns a goccy parse error into a positioned diagnostic
// with a friendlier message for the common mistakes.
func syntaxDiagnostic(c chunk, err error) *Diagnostic {
	msg := err.Error()
	line, col := c.base+1, 1
	var se *yaml.SyntaxError
	var tokOrigin string
	var next int // line of the token after the error token, if any
	if errors.As(err, &se) {
		msg = se.Message
		if tk := se.Token; tk != nil && tk.Position != nil {
			line, col = c.base+tk.Position.Line, tk.Position.Column
			tokOrigin = tk.Origin
			if tk.Next != nil && tk.Next.Position != nil {
				next = c.base + tk.Next.Position.Line
			}
		}
	}
	hint := ""
	indentHint := "keys of one mapping must start in the same column; indent with spaces only"
	switch {
	case strings.Contains(msg, "'\t'") || strings.Contains(msg, `'\t'`) || strings.Contains(strings.ToLower(msg), "tab character"):
		msg, hint = "tab character in indentation", "YAML indents with spaces only; replace the tab with spaces"
		for l := line; l <= line+1; l++ {
			if i := strings.IndexByte(c.file.line(l), '\t'); i >= 0 {
				line, col = l, i+1
				break
			}
		}
	case msg == "mapping value is not allowed in this context" && strings.Contains(strings.TrimSpace(tokOrigin), "\n") && next > 0:
		// goccy read an over-indented "key:" as the continuation of the
		// scalar before it; point at the key itself.
		line = next
		text := c.file.line(line)
		col = len(text) - len(strings.TrimLeft(text, " ")) + 1
		key, _, _ := strings.Cut(strings.TrimSpace(text), ":")
		msg, hint = fmt.Sprintf("bad indentation: key %q does not line up with the keys above it", key), indentHint
	case msg == "mapping value is not allowed in this context":
		msg, hint = "invalid YAML: unexpected \":\" (a value cannot start a new mapping on the same line)",
			`quote values that contain ": ", or put the nested mapping on its own indented lines`
	case msg == "value is not allowed in this context":
		key, _, _ := strings.Cut(strings.TrimSpace(c.file.line(line)), ":")
		msg, hint = fmt.Sprintf("bad indentation: key %q does not line up with the keys above it", key), indentHint
	case msg == "non-map value is specified":
		msg, hint = fmt.Sprintf("invalid YAML: expected \"key: value\", found %q", strings.TrimSpace(tokOrigin)), `separate key and value with ": "`
	case strings.Contains(msg, "',' or ']' must be specified"):
		msg, hint = `invalid YAML: expected "," or "]" in a list`, `close the list with "]" or separate items with ","`
	case strings.Contains(msg, "']' not found"):
		msg, hint = `invalid YAML: "[" is never closed`, `add the missing "]"`
	case strings.Contains(msg, "'}'"):
		msg, hint = `invalid YAML: "{" is never closed`, `add the missing "}"`
	case strings.Contains(msg, "end character of double-quoted"):
		msg, hint = "invalid YAML: unterminated double-quoted string", `add the closing "`
	case strings.Contains(msg, "end character of single-quoted"):
		msg, hint = "invalid YAML: unterminated single-quoted string", "add the closing '"
	default:
		msg = "invalid YAML: " + msg
	}
	line, col, text := c.file.clamp(line, col)
	return &Diagnostic{File: c.file.name, Line: line, Column: col, SourceLine: text, Message: msg, Hint: hint, Severity: SeverityError}
}
