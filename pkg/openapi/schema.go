package openapi

import (
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// maxSchemaDepth bounds the nesting of converted schemas. (Sizes need no
// bound of their own: each referenced schema is converted once per
// document and inlined only when small, so nothing grows exponentially.)
const maxSchemaDepth = 64

// maxInlineNodes is the largest referenced schema written inline; larger
// ones (and recursive ones) go under the input's $defs once and are
// referenced with {"$ref": "#/$defs/Name"}.
//
// Why: inlining every $ref copies a shared schema into every place that
// uses it. GitHub's description references a handful of big schemas
// (repository, simple-user) from hundreds of others; inlined, one
// operation's input could reach the node limit and the import of 1,223
// operations took gigabytes. Small schemas (an enum, a pair of fields)
// stay inline, which is what models read best.
const maxInlineNodes = 64

// refForms memoizes, for one document, how each $ref converts: the
// converted schema (shared by every operation that uses it: never modify
// it), whether it is a $defs entry, and which $defs entries it refers to.
// Each referenced schema is converted once per document, not once per use.
type refForms struct {
	v30   bool
	forms map[string]*refForm
	names map[string]string // $ref → $defs name, unique in the document
	taken map[string]string // $defs name → $ref
	// info holds, by $defs name, the entries' stripped forms and sizes
	// for inputs over spec.MaxSchemaBytes (fit.go).
	info map[string]*defInfo
	// limit replaces spec.MaxSchemaBytes when set (tests).
	limit int
}

type refForm struct {
	schema map[string]any
	size   int // schema nodes, counting inlined forms in full and $refs as one
	def    bool
	deps   []string // $refs of the $defs entries schema refers to
	done   bool
}

func newRefForms(v30 bool) *refForms {
	return &refForms{v30: v30, forms: map[string]*refForm{}, names: map[string]string{}, taken: map[string]string{}}
}

// name returns the $defs name of ref: its last path segment, made unique.
func (f *refForms) name(ref string) string {
	if n, ok := f.names[ref]; ok {
		return n
	}
	base := ref[strings.LastIndexByte(ref, '/')+1:]
	if base == "" {
		base = "schema"
	}
	n := base
	for i := 2; f.taken[n] != ""; i++ {
		n = base + "_" + itoa(i)
	}
	f.names[ref], f.taken[n] = n, ref
	return n
}

// byName returns the $defs entry a "#/$defs/Name" reference names, or nil.
func (f *refForms) byName(ref string) map[string]any {
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		return nil
	}
	if form := f.forms[f.taken[name]]; form != nil && form.done {
		return form.schema
	}
	return nil
}

// schemaConverter turns OpenAPI schemas (3.0 or 3.1) into JSON Schema
// 2020-12 values for one operation's `input`, the shape MCP tools
// declare. Small referenced schemas are inlined, large or recursive ones
// become $defs entries (see maxInlineNodes). readOnly properties are
// dropped (they are never sent in requests), and OpenAPI-only keywords
// (nullable, discriminator, xml, example, x-*) are rewritten or removed.
type schemaConverter struct {
	v30   bool
	forms *refForms
	stack []string // $refs being converted ("" for inline schemas)
	deps  *[]string
	size  int // schema nodes written so far
	// truncated is set when a limit replaced part of a schema by {}.
	truncated bool
}

func newSchemaConverter(forms *refForms) *schemaConverter {
	return &schemaConverter{v30: forms.v30, forms: forms}
}

// convert returns the JSON Schema of ref. The result may be shared with
// other operations: copy before modifying it.
func (c *schemaConverter) convert(ref *openapi3.SchemaRef) map[string]any {
	if ref == nil || ref.Value == nil {
		return map[string]any{}
	}
	if len(c.stack) >= maxSchemaDepth {
		c.truncated = true
		return map[string]any{}
	}
	if ref.Ref == "" {
		c.stack = append(c.stack, "")
		defer func() { c.stack = c.stack[:len(c.stack)-1] }()
		return c.schema(ref.Value)
	}
	f := c.forms.forms[ref.Ref]
	if f == nil {
		f = &refForm{}
		c.forms.forms[ref.Ref] = f
		var deps []string
		outer, size := c.deps, c.size
		c.deps = &deps
		c.stack = append(c.stack, ref.Ref)
		f.schema = c.schema(ref.Value)
		c.stack = c.stack[:len(c.stack)-1]
		c.deps = outer
		f.deps, f.done, f.size = deps, true, c.size-size
		c.size = size
		if f.size > maxInlineNodes {
			f.def = true
		}
	} else if !f.done {
		// Met again while being converted: recursive, so a $defs entry.
		f.def = true
	}
	if f.def {
		c.addDep(ref.Ref)
		c.size++
		return map[string]any{"$ref": "#/$defs/" + c.forms.name(ref.Ref)}
	}
	for _, d := range f.deps {
		c.addDep(d)
	}
	c.size += f.size
	return f.schema
}

func (c *schemaConverter) addDep(ref string) {
	if c.deps != nil && !slices.Contains(*c.deps, ref) {
		*c.deps = append(*c.deps, ref)
	}
}

// defs returns the $defs of an operation whose schemas referred to the
// entries deps (directly): those and every entry they refer to.
func (f *refForms) defs(deps []string) map[string]any {
	if len(deps) == 0 {
		return nil
	}
	out := map[string]any{}
	queue := slices.Clone(deps)
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		name := f.name(ref)
		if _, seen := out[name]; seen {
			continue
		}
		form := f.forms[ref]
		out[name] = form.schema
		queue = append(queue, form.deps...)
	}
	return out
}

func (c *schemaConverter) list(refs openapi3.SchemaRefs) []any {
	out := make([]any, 0, len(refs))
	for _, r := range refs {
		out = append(out, c.convert(r))
	}
	return out
}

func (c *schemaConverter) schema(s *openapi3.Schema) map[string]any {
	m := map[string]any{}
	c.size++
	if s.Always != nil {
		if !*s.Always {
			m["not"] = map[string]any{}
		}
		return m
	}
	var types []any
	if s.Type != nil {
		for _, t := range s.Type.Slice() {
			types = append(types, t)
		}
	}
	if s.Nullable && len(types) > 0 && !containsAny(types, "null") {
		types = append(types, "null")
	}
	switch len(types) {
	case 0:
	case 1:
		m["type"] = types[0]
	default:
		m["type"] = types
	}
	if s.Title != "" {
		m["title"] = s.Title
	}
	if s.Description != "" {
		m["description"] = s.Description
	}
	if s.Format != "" {
		m["format"] = s.Format
	}
	if len(s.Enum) > 0 {
		enum := append([]any(nil), s.Enum...)
		if s.Nullable && !containsAny(enum, nil) {
			enum = append(enum, nil)
		}
		m["enum"] = enum
	}
	if s.Const != nil {
		m["const"] = s.Const
	}
	if s.Default != nil {
		m["default"] = s.Default
	}
	switch {
	case len(s.Examples) > 0:
		m["examples"] = s.Examples
	case s.Example != nil:
		m["examples"] = []any{s.Example}
	}
	if s.Deprecated {
		m["deprecated"] = true
	}
	// Numbers. OpenAPI 3.0's boolean exclusiveMinimum/Maximum modify
	// minimum/maximum; 3.1 (and JSON Schema) give the bound itself.
	switch {
	case s.ExclusiveMin.Value != nil:
		m["exclusiveMinimum"] = *s.ExclusiveMin.Value
		if s.Min != nil {
			m["minimum"] = *s.Min
		}
	case s.ExclusiveMin.IsTrue() && s.Min != nil:
		m["exclusiveMinimum"] = *s.Min
	case s.Min != nil:
		m["minimum"] = *s.Min
	}
	switch {
	case s.ExclusiveMax.Value != nil:
		m["exclusiveMaximum"] = *s.ExclusiveMax.Value
		if s.Max != nil {
			m["maximum"] = *s.Max
		}
	case s.ExclusiveMax.IsTrue() && s.Max != nil:
		m["exclusiveMaximum"] = *s.Max
	case s.Max != nil:
		m["maximum"] = *s.Max
	}
	if s.MultipleOf != nil {
		m["multipleOf"] = *s.MultipleOf
	}
	// Strings.
	if s.MinLength > 0 {
		m["minLength"] = s.MinLength
	}
	if s.MaxLength != nil {
		m["maxLength"] = *s.MaxLength
	}
	if s.Pattern != "" {
		m["pattern"] = s.Pattern
	}
	if s.ContentMediaType != "" {
		m["contentMediaType"] = s.ContentMediaType
	}
	if s.ContentEncoding != "" {
		m["contentEncoding"] = s.ContentEncoding
	}
	// Arrays.
	if s.Items != nil {
		m["items"] = c.convert(s.Items)
	}
	if len(s.PrefixItems) > 0 {
		m["prefixItems"] = c.list(s.PrefixItems)
	}
	if s.Contains != nil {
		m["contains"] = c.convert(s.Contains)
	}
	if s.MinItems > 0 {
		m["minItems"] = s.MinItems
	}
	if s.MaxItems != nil {
		m["maxItems"] = *s.MaxItems
	}
	if s.UniqueItems {
		m["uniqueItems"] = true
	}
	// Objects.
	if len(s.Properties) > 0 {
		props := map[string]any{}
		for name, p := range s.Properties {
			if p != nil && p.Value != nil && p.Value.ReadOnly {
				continue
			}
			props[name] = c.convert(p)
		}
		m["properties"] = props
		var req []any
		for _, r := range s.Required {
			if _, ok := props[r]; ok {
				req = append(req, r)
			}
		}
		if len(req) > 0 {
			m["required"] = req
		}
	} else if len(s.Required) > 0 {
		req := make([]any, 0, len(s.Required))
		for _, r := range s.Required {
			req = append(req, r)
		}
		m["required"] = req
	}
	if ap := s.AdditionalProperties; ap.Has != nil {
		m["additionalProperties"] = *ap.Has
	} else if ap.Schema != nil {
		m["additionalProperties"] = c.convert(ap.Schema)
	}
	if len(s.PatternProperties) > 0 {
		pp := map[string]any{}
		for k, v := range s.PatternProperties {
			pp[k] = c.convert(v)
		}
		m["patternProperties"] = pp
	}
	if s.PropertyNames != nil {
		m["propertyNames"] = c.convert(s.PropertyNames)
	}
	if s.MinProps > 0 {
		m["minProperties"] = s.MinProps
	}
	if s.MaxProps != nil {
		m["maxProperties"] = *s.MaxProps
	}
	if len(s.DependentRequired) > 0 {
		dr := map[string]any{}
		for k, v := range s.DependentRequired {
			l := make([]any, len(v))
			for i := range v {
				l[i] = v[i]
			}
			dr[k] = l
		}
		m["dependentRequired"] = dr
	}
	// Composition.
	if len(s.AllOf) > 0 {
		m["allOf"] = c.list(s.AllOf)
	}
	if len(s.OneOf) > 0 {
		m["oneOf"] = c.list(s.OneOf)
	}
	if len(s.AnyOf) > 0 {
		m["anyOf"] = c.list(s.AnyOf)
	}
	if s.Not != nil {
		m["not"] = c.convert(s.Not)
	}
	if s.If != nil {
		m["if"] = c.convert(s.If)
		if s.Then != nil {
			m["then"] = c.convert(s.Then)
		}
		if s.Else != nil {
			m["else"] = c.convert(s.Else)
		}
	}
	return m
}

func containsAny(l []any, v any) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}
