package openapi

import (
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// maxSchemaDepth bounds the nesting of converted schemas, and
// maxSchemaNodes the schemas converted for one operation ($refs are
// inlined, so a document can describe exponentially large inputs).
const (
	maxSchemaDepth = 64
	maxSchemaNodes = 20000
)

// schemaConverter turns OpenAPI schemas (3.0 or 3.1) into JSON Schema
// 2020-12 values for an operation's `input`, the shape MCP tools declare.
// $refs are inlined; a recursive reference becomes {"$ref":
// "#/$defs/Name"} with Name defined once under the input's $defs.
// readOnly properties are dropped (they are never sent in requests), and
// OpenAPI-only keywords (nullable, discriminator, xml, example, x-*) are
// rewritten or removed.
type schemaConverter struct {
	v30     bool
	stack   []string // $refs being converted
	defs    map[string]map[string]any
	defName map[string]string // $ref → name under $defs
	nodes   int
	// truncated is set when a limit replaced part of a schema by {}.
	truncated bool
}

func newSchemaConverter(v30 bool) *schemaConverter {
	return &schemaConverter{v30: v30, defs: map[string]map[string]any{}, defName: map[string]string{}}
}

// convert returns the JSON Schema of ref, or nil for "anything".
func (c *schemaConverter) convert(ref *openapi3.SchemaRef) map[string]any {
	if ref == nil || ref.Value == nil {
		return map[string]any{}
	}
	if ref.Ref != "" {
		for _, r := range c.stack {
			if r == ref.Ref {
				return map[string]any{"$ref": "#/$defs/" + c.define(ref)}
			}
		}
		if len(c.stack) >= maxSchemaDepth {
			c.truncated = true
			return map[string]any{}
		}
		c.stack = append(c.stack, ref.Ref)
		defer func() { c.stack = c.stack[:len(c.stack)-1] }()
		out := c.schema(ref.Value)
		if name, ok := c.defName[ref.Ref]; ok && c.defs[name] == nil {
			c.defs[name] = out
		}
		return out
	}
	if len(c.stack) >= maxSchemaDepth {
		c.truncated = true
		return map[string]any{}
	}
	c.stack = append(c.stack, "")
	defer func() { c.stack = c.stack[:len(c.stack)-1] }()
	return c.schema(ref.Value)
}

// define reserves a $defs name for a recursive $ref; the definition is
// filled when the outermost conversion of that $ref finishes.
func (c *schemaConverter) define(ref *openapi3.SchemaRef) string {
	if name, ok := c.defName[ref.Ref]; ok {
		return name
	}
	base := ref.Ref[strings.LastIndexByte(ref.Ref, '/')+1:]
	if base == "" {
		base = "schema"
	}
	name := base
	for i := 2; ; i++ {
		if _, used := c.defs[name]; !used {
			break
		}
		name = base + "_" + itoa(i)
	}
	c.defName[ref.Ref] = name
	c.defs[name] = nil // reserved
	return name
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
	if c.nodes++; c.nodes > maxSchemaNodes {
		c.truncated = true
		return m
	}
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
