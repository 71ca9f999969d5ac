package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Checks of the text AI agents read: every Tool string that reaches an MCP
// client (descriptions, titles, tags, input schemas) is scanned for text
// hazards (texthazards.go) and held to the size caps (limits.go); input
// schemas are also checked for keywords JSON Schema does not have.

// hazardSeverity is the severity of text hazards: the Gateway's
// spec.mcp.toolMetadata, warnings by default.
func (v *validator) hazardSeverity() Severity {
	if v.hazardSev == "" {
		v.hazardSev = SeverityWarning
		if _, gs := v.gatewaySpec(); gs != nil && gs.MCP != nil && gs.MCP.ToolMetadata == "error" {
			v.hazardSev = SeverityError
		}
	}
	return v.hazardSev
}

// textOK reports, without allocating, whether s needs no diagnostic: it
// is within max bytes (0: no cap) and has no hazard. Callers build field
// paths only when it does not, which keeps validating 10,000 clean tools
// cheap.
func textOK(s string, max int) bool {
	return s == "" || (max == 0 || len(s) <= max) && TextClean(s)
}

// toolText checks the agent-facing text of a Tool.
func (v *validator) toolText(o *Object, s *ToolSpec) {
	if !textOK(s.Description, MaxDescriptionBytes) {
		v.text(o, "spec.description", "description", s.Description, MaxDescriptionBytes, false)
	}
	for i, t := range s.Tags {
		if !textOK(t, MaxTagBytes) {
			v.text(o, itemPath("spec.tags", i), "tag", t, MaxTagBytes, false)
		}
	}
	for i := range s.Operations {
		op := &s.Operations[i]
		p := func() string { return itemPath("spec.operations", i) }
		if !textOK(op.Title, MaxTitleBytes) {
			v.text(o, p()+".title", "title", op.Title, MaxTitleBytes, false)
		}
		if !textOK(op.Description, MaxDescriptionBytes) {
			v.text(o, p()+".description", "description", op.Description, MaxDescriptionBytes, false)
		}
		for j, t := range op.Tags {
			if !textOK(t, MaxTagBytes) {
				v.text(o, itemPath(p()+".tags", j), "tag", t, MaxTagBytes, false)
			}
		}
		if op.Input != nil {
			size := 0
			if !schemaOK(op.Input, 0, &size) || size > MaxSchemaBytes {
				v.schemaDoc(o, p()+".input", op.Input)
			}
		}
	}
}

// schemaOK reports, without allocating, whether a schema needs no
// diagnostic: the same walk as schema, without paths. It adds to *size
// what jsonSize would count, stopping once that passes MaxSchemaBytes
// (the caller then runs the full check).
func schemaOK(m map[string]any, depth int, size *int) bool {
	if depth > maxDepth || *size > MaxSchemaBytes {
		return true
	}
	*size += 2 + len(m)
	for k, val := range m {
		*size += len(k) + 3
		kw := keywords[k]
		if kw == 0 && !strings.HasPrefix(k, "x-") {
			return false
		}
		switch {
		case kw&kwProse != 0:
			if s, ok := val.(string); ok {
				max := 0
				if k == "description" {
					max = MaxDescriptionBytes
				} else if k == "title" {
					max = MaxTitleBytes
				}
				*size += len(s) + 2
				if !textOK(s, max) {
					return false
				}
				continue
			}
		case kw&kwMap != 0:
			if props, ok := val.(map[string]any); ok {
				*size += 2 + len(props)
				for name, sub := range props {
					*size += len(name) + 3
					if !textOK(name, 0) {
						return false
					}
					if sm, ok := sub.(map[string]any); ok {
						if !schemaOK(sm, depth+1, size) {
							return false
						}
					} else if !dataOK(sub, depth+1, size) {
						return false
					}
				}
				continue
			}
		case kw&kwList != 0:
			if list, ok := val.([]any); ok {
				*size += 2 + len(list)
				for _, e := range list {
					if sm, ok := e.(map[string]any); ok {
						if !schemaOK(sm, depth+1, size) {
							return false
						}
					} else if !dataOK(e, depth+1, size) {
						return false
					}
				}
				continue
			}
		}
		if kw&kwSchema != 0 {
			if sm, ok := val.(map[string]any); ok {
				if !schemaOK(sm, depth+1, size) {
					return false
				}
				continue
			}
		}
		if !dataOK(val, depth+1, size) {
			return false
		}
	}
	return true
}

// dataOK is data without paths; it adds string sizes to *size.
func dataOK(val any, depth int, size *int) bool {
	if depth > maxDepth {
		return true
	}
	switch x := val.(type) {
	case string:
		*size += len(x) + 2
		return textOK(x, 0)
	case []any:
		*size += 2 + len(x)
		for _, e := range x {
			if !dataOK(e, depth+1, size) {
				return false
			}
		}
	case map[string]any:
		*size += 2 + len(x)
		for k, e := range x {
			*size += len(k) + 3
			if !textOK(k, 0) || !dataOK(e, depth+1, size) {
				return false
			}
		}
	default:
		*size += jsonSize(x, 64)
	}
	return true
}

// description holds a description of any kind to its size cap.
func (v *validator) description(o *Object, path, s string) {
	if len(s) > MaxDescriptionBytes {
		v.errorf(o, path, "keep descriptions short; put long documentation elsewhere and link to it",
			"description is %s; at most %s are allowed", sizeText(int64(len(s))), sizeText(MaxDescriptionBytes))
	}
}

// text checks one agent-facing string: its size (max bytes, 0 for none)
// and its hazards. key says the string is a mapping key (a property name).
func (v *validator) text(o *Object, path, what, s string, max int, key bool) {
	if s == "" {
		return
	}
	if max > 0 && len(s) > max {
		hint := "shorten it"
		if what == "description" {
			hint = "keep descriptions short: agents read them on every tools/list; link to longer documentation"
		}
		v.add(o, SeverityError, key, path, hint,
			fmt.Sprintf("%s is %s; at most %s are allowed", what, sizeText(int64(len(s))), sizeText(int64(max))))
		return
	}
	hz := FindTextHazards(s)
	if len(hz) == 0 {
		return
	}
	sev := v.hazardSeverity()
	hint := "remove them: agents read every character of tool metadata, reviewers do not see these"
	if sev == SeverityWarning {
		hint += "; the Gateway's spec.mcp.toolMetadata: error refuses them"
	}
	// One diagnostic per class, at its first occurrence.
	var classes []HazardClass
	byClass := map[HazardClass][]Hazard{}
	for _, h := range hz {
		if byClass[h.Class] == nil {
			classes = append(classes, h.Class)
		}
		byClass[h.Class] = append(byClass[h.Class], h)
	}
	for _, c := range classes {
		list := byClass[c]
		first := list[0]
		n := len(list)
		count := func(one, many string) string {
			if n == 1 {
				if strings.IndexByte("aeiou", one[0]) >= 0 {
					return "an " + one
				}
				return "a " + one
			}
			return strconv.Itoa(n) + " " + many
		}
		var msg, h string
		switch c {
		case HazardTag:
			msg = fmt.Sprintf("%s contains %s (U+E0000–U+E007F): invisible text that agents read",
				what, count("Unicode tag character", "Unicode tag characters"))
			h = hint
		case HazardBidi:
			msg = fmt.Sprintf("%s contains %s, first %s: what is displayed differs from what agents read",
				what, count("bidirectional control character", "bidirectional control characters"), first)
			h = hint
		case HazardInvisible:
			msg = fmt.Sprintf("%s contains %s, first %s", what, count("invisible character", "invisible characters"), first)
			h = hint
		case HazardControl:
			msg = fmt.Sprintf("%s contains %s, first %s", what, count("control character", "control characters"), first)
			h = hint
		case HazardVariation:
			msg = fmt.Sprintf("%s contains %s, first %s: selectors that modify nothing can encode hidden data",
				what, count("stray variation selector", "stray variation selectors"), first)
			h = hint
		case HazardMarkup:
			msg = fmt.Sprintf("%s contains prompt-injection markup %s", what, first)
			if n > 1 {
				msg += fmt.Sprintf(" and %d more", n-1)
			}
			h = "describe what the tool does: text that instructs the model is tool poisoning; the Gateway's spec.mcp.toolMetadata: error refuses it"
			if sev == SeverityError {
				h = "describe what the tool does: text that instructs the model is tool poisoning"
			}
		}
		p := v.add(o, sev, key, path, h, msg)
		p.find = first.Text
	}
}

// jsonSchemaKeywords is the JSON Schema 2020-12 vocabulary (core,
// applicator, unevaluated, validation, meta-data, format and content),
// plus the draft-07 names editors still write (definitions,
// dependencies).
var jsonSchemaKeywords = []string{
	"$schema", "$id", "$ref", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary", "$comment", "$defs",
	"prefixItems", "items", "contains", "additionalProperties", "properties", "patternProperties", "dependentSchemas",
	"propertyNames", "if", "then", "else", "allOf", "anyOf", "oneOf", "not",
	"unevaluatedItems", "unevaluatedProperties",
	"type", "const", "enum", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
	"maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxContains", "minContains",
	"maxProperties", "minProperties", "required", "dependentRequired",
	"title", "description", "default", "deprecated", "readOnly", "writeOnly", "examples",
	"format", "contentEncoding", "contentMediaType", "contentSchema",
	"definitions", "dependencies",
}

// What a keyword's value holds, as bits of keywords' entries.
const (
	kwKnown  = 1 << iota
	kwSchema // a schema
	kwMap    // a mapping of names to schemas
	kwList   // a list of schemas
	kwProse  // text agents read as prose
)

// keywords maps every keyword to what its value holds (one lookup per
// key: schemas are walked for every operation of every tool).
var keywords = func() map[string]uint8 {
	m := make(map[string]uint8, len(jsonSchemaKeywords))
	for _, k := range jsonSchemaKeywords {
		m[k] = kwKnown
	}
	for _, k := range []string{"items", "contains", "additionalProperties", "propertyNames", "if", "then", "else", "not",
		"unevaluatedItems", "unevaluatedProperties", "contentSchema"} {
		m[k] |= kwSchema
	}
	for _, k := range []string{"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"} {
		m[k] |= kwMap
	}
	for _, k := range []string{"prefixItems", "allOf", "anyOf", "oneOf", "items"} {
		m[k] |= kwList
	}
	for _, k := range []string{"description", "title", "$comment"} {
		m[k] |= kwProse
	}
	return m
}()

// openAPIHints explains OpenAPI 3.0 schema keywords that JSON Schema 2020-12 lacks.
var openAPIHints = map[string]string{
	"nullable":      `JSON Schema writes it as a type list: type: [string, "null"]`,
	"example":       "JSON Schema writes examples: [value]",
	"discriminator": "an OpenAPI keyword; MCP clients ignore it (write it as x-discriminator to keep it)",
	"xml":           "an OpenAPI keyword; MCP clients ignore it",
	"externalDocs":  "an OpenAPI keyword; MCP clients ignore it",
}

// schemaDoc checks an operation's input schema: size, keywords and text.
func (v *validator) schemaDoc(o *Object, path string, m map[string]any) {
	if n := jsonSize(m, MaxSchemaBytes+1); n > MaxSchemaBytes {
		v.errorf(o, path, "split the operation, or move reference documentation out of the schema",
			"input schema is about %s as JSON; at most %s are allowed", sizeText(int64(n)), sizeText(MaxSchemaBytes))
		return
	}
	v.schema(o, path, m, 0)
}

// schema walks a schema object: its keys are keywords.
func (v *validator) schema(o *Object, path string, m map[string]any, depth int) {
	if depth > maxDepth {
		return
	}
	for _, k := range sortedKeys(m) {
		val := m[k]
		kp := path + pathKey(k)
		kw := keywords[k]
		if kw == 0 && !strings.HasPrefix(k, "x-") {
			v.unknownKeyword(o, kp, k, val)
			v.text(o, kp, "input schema key", k, 0, true)
			v.data(o, kp, val, depth+1)
			continue
		}
		switch {
		case kw&kwProse != 0:
			if s, ok := val.(string); ok {
				max := 0
				if k == "description" {
					max = MaxDescriptionBytes
				} else if k == "title" {
					max = MaxTitleBytes
				}
				v.text(o, kp, "input schema "+k, s, max, false)
				continue
			}
		case kw&kwMap != 0:
			if props, ok := val.(map[string]any); ok {
				for _, name := range sortedKeys(props) {
					np := kp + pathKey(name)
					v.text(o, np, "property name", name, 0, true)
					if sub, ok := props[name].(map[string]any); ok {
						v.schema(o, np, sub, depth+1)
					} else {
						v.data(o, np, props[name], depth+1)
					}
				}
				continue
			}
		case kw&kwList != 0:
			if list, ok := val.([]any); ok {
				for i, e := range list {
					if sub, ok := e.(map[string]any); ok {
						v.schema(o, itemPath(kp, i), sub, depth+1)
					} else {
						v.data(o, itemPath(kp, i), e, depth+1)
					}
				}
				continue
			}
		}
		if kw&kwSchema != 0 {
			if sub, ok := val.(map[string]any); ok {
				v.schema(o, kp, sub, depth+1)
				continue
			}
		}
		v.data(o, kp, val, depth+1)
	}
}

// data checks the strings of a value that is not a schema (enum, default,
// examples, ...): agents read those too.
func (v *validator) data(o *Object, path string, val any, depth int) {
	if depth > maxDepth {
		return
	}
	switch x := val.(type) {
	case string:
		v.text(o, path, "input schema value", x, 0, false)
	case []any:
		for i, e := range x {
			v.data(o, itemPath(path, i), e, depth+1)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			v.text(o, path+pathKey(k), "input schema key", k, 0, true)
			v.data(o, path+pathKey(k), x[k], depth+1)
		}
	}
}

// unknownKeyword warns about a key that is not a JSON Schema keyword.
func (v *validator) unknownKeyword(o *Object, path, k string, val any) {
	hint := ""
	switch {
	case val == nil && strings.ContainsAny(k, " ,"):
		// `{description: Invoice id, e.g. INV-1001}`: the comma ended the
		// value and the rest became a key without a value.
		hint = fmt.Sprintf("a comma inside {...} ends a value, so %q became a key: quote the value that contains the comma", k)
	case openAPIHints[k] != "":
		hint = openAPIHints[k]
	default:
		if s := suggest(k, jsonSchemaKeywords); s != "" {
			hint = fmt.Sprintf("did you mean %q?", s)
		} else {
			hint = "JSON Schema 2020-12 has no such keyword; prefix extensions with x-"
		}
	}
	v.add(o, SeverityWarning, true, path, hint,
		fmt.Sprintf("unknown JSON Schema keyword %q in input schema", k))
}

// SchemaSize is the size Validate holds to MaxSchemaBytes: about how many
// bytes the input schema m takes as JSON, stopping once it passes limit.
// Importers that build schemas measure with it, so what they produce
// validates.
func SchemaSize(m map[string]any, limit int) int { return jsonSize(m, limit) }

// jsonSize returns about how many bytes v takes as JSON, stopping once it
// passes limit.
func jsonSize(v any, limit int) int {
	n := 0
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if n > limit || depth > maxDepth {
			return
		}
		switch x := v.(type) {
		case nil:
			n += 4
		case bool:
			n += 5
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				n += 4
			} else {
				var buf [32]byte
				n += len(strconv.AppendFloat(buf[:0], x, 'g', -1, 64))
			}
		case string:
			n += len(x) + 2
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32:
			// Schemas built in memory (the OpenAPI importer's minLength,
			// maxItems, …) hold Go integers; as JSON, and once a spec
			// file is read back, they are numbers of this length.
			n += len(fmt.Sprint(x))
		case []any:
			n += 2 + len(x)
			for _, e := range x {
				walk(e, depth+1)
			}
		case map[string]any:
			n += 2 + len(x)
			for k, e := range x {
				n += len(k) + 3
				walk(e, depth+1)
			}
		}
	}
	walk(v, 0)
	return n
}
