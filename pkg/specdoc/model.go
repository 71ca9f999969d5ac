// Package specdoc is the documentation of the spec model (pkg/spec): every
// kind's fields with their types, doc comments and the constraints that
// validation enforces. It is generated from pkg/spec's Go source by
// internal/gen/schemagen (`make generate`), which also writes the JSON
// Schemas in specs/stoa.io/v1alpha1 from it; `stoa explain` reads it.
package specdoc

import (
	"slices"
	"sort"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Type is a struct type of the spec model.
type Type struct {
	Name   string // Go name, e.g. ToolSpec
	Doc    string
	Fields []Field
	// StringForm is set for types that may also be written as a string
	// (RateLimit: "100/s" or {rate: 100/s, burst: 20}); it is the pattern
	// of that string.
	StringForm string
	// OneOf lists fields of which exactly one must be set (SecretRef).
	OneOf []string
}

// Field is one JSON field of a Type.
type Field struct {
	Name     string // JSON name
	Doc      string
	Type     Ref
	Required bool
	// Enum lists the allowed values of the field, or of its elements for
	// lists and map values.
	Enum []string
	// Pattern constrains strings (or list elements) further.
	Pattern string
	// Minimum and Maximum bound integers (or list elements); nil is none.
	Minimum, Maximum *int
}

// Ref is the type of a field.
type Ref struct {
	// Kind is string, integer, number, boolean, array, map, object (a Type
	// named by Name), scalar (a named string type, by Name) or any.
	Kind string
	Name string
	Elem *Ref // array elements and map values
}

// Scalar is a named string type with a syntax (Duration, Rate).
type Scalar struct {
	Name    string
	Doc     string
	Pattern string
}

// Model is the whole documented spec model.
type Model struct {
	Types   map[string]*Type
	Scalars map[string]*Scalar
	// Kinds maps each kind to its spec type (Tool → ToolSpec).
	Kinds map[string]string
}

// Default is the model generated from pkg/spec (zz_generated.go).
func Default() *Model { return generated }

// Label is how explain shows a type: string, []Operation, map[string]string.
func (r Ref) Label() string {
	switch r.Kind {
	case "array":
		return "[]" + r.Elem.Label()
	case "map":
		if r.Elem.Kind == "any" {
			return "object"
		}
		return "map[string]" + r.Elem.Label()
	case "object", "scalar":
		return r.Name
	}
	return r.Kind
}

// Object returns the struct type r refers to (through lists and maps), or
// nil for scalars.
func (m *Model) Object(r Ref) *Type {
	for r.Kind == "array" || r.Kind == "map" {
		r = *r.Elem
	}
	if r.Kind == "object" {
		return m.Types[r.Name]
	}
	return nil
}

// KindNames lists the kinds in dependency order.
func (m *Model) KindNames() []string {
	var out, extra []string
	for _, k := range spec.Kinds {
		if _, ok := m.Kinds[string(k)]; ok {
			out = append(out, string(k))
		}
	}
	for k := range m.Kinds {
		if !slices.Contains(out, k) {
			extra = append(extra, k) // kinds the loader does not know yet
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// Field returns the named field of t.
func (t *Type) Field(name string) *Field {
	for i := range t.Fields {
		if strings.EqualFold(t.Fields[i].Name, name) {
			return &t.Fields[i]
		}
	}
	return nil
}

//go:generate go run ../../internal/gen/schemagen -root ../..
