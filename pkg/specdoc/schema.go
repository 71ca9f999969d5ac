package specdoc

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// SchemaDialect is the JSON Schema draft of the generated schemas: draft-07,
// which yaml-language-server and most editors understand fully.
const SchemaDialect = "http://json-schema.org/draft-07/schema#"

// DNSLabel is the pattern of metadata.name and metadata.namespace.
const DNSLabel = `^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`

// KindSchema is the JSON Schema of one kind's objects, self-contained.
func (m *Model) KindSchema(kind string) map[string]any {
	defs := map[string]any{}
	s := m.envelope(kind, defs)
	s["$schema"] = SchemaDialect
	s["$id"] = strings.ToLower(kind) + ".json"
	s["definitions"] = defs
	return s
}

// AllSchema is one schema for every kind, choosing by `kind`; it is what
// example specs name in their yaml-language-server modeline.
func (m *Model) AllSchema() map[string]any {
	defs := map[string]any{}
	var kinds []any
	var branches []any
	for _, k := range m.KindNames() {
		defs[k] = m.envelope(k, defs)
		kinds = append(kinds, k)
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"kind": map[string]any{"const": k}}, "required": []any{"kind"}},
			"then": map[string]any{"$ref": "#/definitions/" + k},
		})
	}
	return map[string]any{
		"$schema":     SchemaDialect,
		"$id":         "all.json",
		"title":       "stoa " + spec.APIVersion + " object",
		"description": "Any stoa object; the kind field selects its schema.",
		"type":        "object",
		"required":    []any{"apiVersion", "kind", "metadata", "spec"},
		"properties": map[string]any{
			"apiVersion": map[string]any{"const": spec.APIVersion, "description": "The API version: " + spec.APIVersion + "."},
			"kind":       map[string]any{"enum": kinds, "description": "The kind of object."},
		},
		"allOf":       branches,
		"definitions": defs,
	}
}

// envelope is the schema of a whole object of kind: apiVersion, kind,
// metadata and the kind's spec.
func (m *Model) envelope(kind string, defs map[string]any) map[string]any {
	specType := m.Kinds[kind]
	meta := "MetadataNamespaced"
	if k := spec.Kind(kind); !k.Namespaced() {
		meta = "MetadataCluster"
	}
	m.metadataDefs(defs)
	m.define(specType, defs)
	doc := ""
	if t := m.Types[specType]; t != nil {
		doc = t.Doc
	}
	return map[string]any{
		"title":                kind,
		"description":          doc,
		"type":                 "object",
		"required":             []any{"apiVersion", "kind", "metadata", "spec"},
		"additionalProperties": false,
		"properties": map[string]any{
			"apiVersion": map[string]any{"const": spec.APIVersion, "description": "The API version: " + spec.APIVersion + "."},
			"kind":       map[string]any{"const": kind},
			"metadata":   ref(meta, metadataDoc(kind)),
			"spec":       ref(specType, doc),
		},
	}
}

func metadataDoc(kind string) string {
	if spec.Kind(kind).Namespaced() {
		return "Metadata names the object; namespace is the tenant that owns it (required)."
	}
	return "Metadata names the object; a " + kind + " is cluster-scoped, so it has no namespace."
}

// metadataDefs defines the two metadata shapes: tenant-scoped kinds
// require a namespace, cluster-scoped kinds forbid one.
func (m *Model) metadataDefs(defs map[string]any) {
	if _, ok := defs["MetadataNamespaced"]; ok {
		return
	}
	t := m.Types["Metadata"]
	if t == nil {
		return
	}
	for _, variant := range []string{"MetadataNamespaced", "MetadataCluster"} {
		s := m.object(t, defs)
		props := s["properties"].(map[string]any)
		if variant == "MetadataNamespaced" {
			s["required"] = []any{"name", "namespace"}
		} else {
			delete(props, "namespace")
			s["required"] = []any{"name"}
		}
		defs[variant] = s
	}
}

// define adds the schema of the named type (and everything it uses) to
// defs.
func (m *Model) define(name string, defs map[string]any) {
	if _, ok := defs[name]; ok {
		return
	}
	if sc := m.Scalars[name]; sc != nil {
		s := map[string]any{"type": "string", "description": sc.Doc}
		if sc.Pattern != "" {
			s["pattern"] = sc.Pattern
		}
		defs[name] = s
		return
	}
	t := m.Types[name]
	if t == nil {
		return
	}
	defs[name] = true // placeholder against cycles
	obj := m.object(t, defs)
	if t.StringForm != "" {
		defs[name] = map[string]any{
			"description": t.Doc,
			"oneOf": []any{
				map[string]any{"type": "string", "pattern": t.StringForm},
				obj,
			},
		}
		return
	}
	defs[name] = obj
}

// object is the schema of struct type t.
func (m *Model) object(t *Type, defs map[string]any) map[string]any {
	props := map[string]any{}
	var required []any
	for _, f := range t.Fields {
		props[f.Name] = m.field(&f, defs)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	s := map[string]any{"type": "object", "description": t.Doc, "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	if len(t.OneOf) > 0 {
		var alts []any
		for _, f := range t.OneOf {
			alts = append(alts, map[string]any{"required": []any{f}})
		}
		s["oneOf"] = alts
	}
	return s
}

// field is the schema of one field, carrying its doc comment.
func (m *Model) field(f *Field, defs map[string]any) map[string]any {
	s := m.typeSchema(f.Type, defs)
	constrain := s
	switch f.Type.Kind {
	case "array":
		constrain = s["items"].(map[string]any)
	case "map":
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			constrain = ap
		}
	}
	if len(f.Enum) > 0 {
		var e []any
		for _, v := range f.Enum {
			e = append(e, v)
		}
		constrain["enum"] = e
	}
	if f.Pattern != "" {
		constrain["pattern"] = f.Pattern
	}
	if f.Minimum != nil {
		constrain["minimum"] = *f.Minimum
	}
	if f.Maximum != nil {
		constrain["maximum"] = *f.Maximum
	}
	if f.Doc != "" {
		s["description"] = f.Doc
	}
	return s
}

func (m *Model) typeSchema(r Ref, defs map[string]any) map[string]any {
	switch r.Kind {
	case "string", "integer", "number", "boolean":
		return map[string]any{"type": r.Kind}
	case "array":
		return map[string]any{"type": "array", "items": m.typeSchema(*r.Elem, defs)}
	case "map":
		if r.Elem.Kind == "any" {
			return map[string]any{"type": "object"}
		}
		return map[string]any{"type": "object", "additionalProperties": m.typeSchema(*r.Elem, defs)}
	case "object", "scalar":
		m.define(r.Name, defs)
		// allOf keeps sibling keywords (description, enum) meaningful in
		// draft-07, where they are ignored next to a bare $ref.
		return map[string]any{"allOf": []any{map[string]any{"$ref": "#/definitions/" + r.Name}}}
	}
	return map[string]any{}
}

func ref(name, doc string) map[string]any {
	s := map[string]any{"allOf": []any{map[string]any{"$ref": "#/definitions/" + name}}}
	if doc != "" {
		s["description"] = doc
	}
	return s
}

// MarshalSchema encodes a schema as indented JSON with sorted keys and a
// trailing newline (stable, so the committed files diff cleanly).
func MarshalSchema(s map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
