package openapi

import (
	"errors"
)

// dropExamples returns a JSON OpenAPI document without its examples:
// components.examples and the example/examples members of media types,
// parameters, headers and other non-schema objects. Examples are most of
// the size of large descriptions (GitHub's: a full response body per
// operation), the importer never reads them, and parsed they take ten
// times their text. Schema-level example(s) are kept: they become the
// input's JSON Schema examples. Member names of name maps (schemas,
// properties, paths, responses, …) are never taken for keywords. The raw
// document (served as the Tool's resource) keeps everything.
func dropExamples(raw []byte) ([]byte, error) {
	s := slimmer{in: raw, out: make([]byte, 0, len(raw))}
	i := s.space(0)
	i, err := s.value(i, ctxRoot)
	if err != nil {
		return nil, err
	}
	if s.space(i) != len(raw) {
		return nil, errSlim
	}
	return s.out, nil
}

var errSlim = errors.New("invalid JSON")

type slimCtx uint8

const (
	ctxRoot slimCtx = iota
	ctxOther
	ctxNames      // a map of user-chosen names (paths, responses, …)
	ctxSchemaMap  // a map of names to schemas (schemas, properties, $defs)
	ctxSchema     // a schema
	ctxComponents // the components object
)

// nameMaps are the members whose values map user-chosen names.
var nameMaps = map[string]bool{
	"paths": true, "webhooks": true, "responses": true, "callbacks": true, "links": true, "headers": true,
	"encoding": true, "variables": true, "securitySchemes": true, "scopes": true, "mapping": true,
	"content": true, "requestBodies": true, "parameters": true, "pathItems": true,
}

// schemaMaps are the members whose values map names to schemas.
var schemaMaps = map[string]bool{
	"properties": true, "patternProperties": true, "$defs": true, "definitions": true, "dependentSchemas": true,
}

type slimmer struct {
	in, out []byte
}

func (s *slimmer) space(i int) int {
	for i < len(s.in) && (s.in[i] == ' ' || s.in[i] == '\t' || s.in[i] == '\n' || s.in[i] == '\r') {
		i++
	}
	return i
}

// value copies the value at i (or skips it when skip is set by the caller
// truncating out afterwards) and returns the index after it.
func (s *slimmer) value(i int, ctx slimCtx) (int, error) {
	if i >= len(s.in) {
		return i, errSlim
	}
	switch c := s.in[i]; {
	case c == '{':
		return s.object(i, ctx)
	case c == '[':
		s.out = append(s.out, '[')
		i = s.space(i + 1)
		if i < len(s.in) && s.in[i] == ']' {
			s.out = append(s.out, ']')
			return i + 1, nil
		}
		elem := ctxOther
		if ctx == ctxSchema {
			elem = ctxSchema // allOf, oneOf, prefixItems, …
		}
		for {
			var err error
			if i, err = s.value(s.space(i), elem); err != nil {
				return i, err
			}
			i = s.space(i)
			if i >= len(s.in) {
				return i, errSlim
			}
			if s.in[i] == ']' {
				s.out = append(s.out, ']')
				return i + 1, nil
			}
			if s.in[i] != ',' {
				return i, errSlim
			}
			s.out = append(s.out, ',')
			i++
		}
	case c == '"':
		end, err := s.str(i)
		if err != nil {
			return i, err
		}
		s.out = append(s.out, s.in[i:end]...)
		return end, nil
	default:
		j := i
		for j < len(s.in) && (s.in[j] >= 'a' && s.in[j] <= 'z' || s.in[j] >= '0' && s.in[j] <= '9' ||
			s.in[j] == '-' || s.in[j] == '+' || s.in[j] == '.' || s.in[j] == 'E') {
			j++
		}
		if j == i {
			return i, errSlim
		}
		s.out = append(s.out, s.in[i:j]...)
		return j, nil
	}
}

// str returns the index after the string starting at i.
func (s *slimmer) str(i int) (int, error) {
	for j := i + 1; j < len(s.in); j++ {
		switch s.in[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return i, errSlim
}

func (s *slimmer) object(i int, ctx slimCtx) (int, error) {
	s.out = append(s.out, '{')
	i = s.space(i + 1)
	if i < len(s.in) && s.in[i] == '}' {
		s.out = append(s.out, '}')
		return i + 1, nil
	}
	first := true
	for {
		if i >= len(s.in) || s.in[i] != '"' {
			return i, errSlim
		}
		kEnd, err := s.str(i)
		if err != nil {
			return i, err
		}
		key := string(s.in[i+1 : kEnd-1]) // escapes are kept: keywords have none
		i = s.space(kEnd)
		if i >= len(s.in) || s.in[i] != ':' {
			return i, errSlim
		}
		i = s.space(i + 1)
		var child slimCtx
		drop := false
		switch ctx {
		case ctxNames:
			child = ctxOther
		case ctxSchemaMap:
			child = ctxSchema
		case ctxSchema:
			child = ctxSchema
			if schemaMaps[key] {
				child = ctxSchemaMap
			}
		default:
			switch {
			case ctx == ctxRoot && key == "components":
				child = ctxComponents
			case ctx == ctxComponents && key == "schemas":
				child = ctxSchemaMap
			case key == "example" || key == "examples":
				drop = true
			case key == "schema":
				child = ctxSchema
			case nameMaps[key] || ctx == ctxComponents:
				child = ctxNames
			default:
				child = ctxOther
			}
		}
		mark := len(s.out)
		if !first {
			s.out = append(s.out, ',')
		}
		s.out = append(s.out, s.in[kEnd-len(key)-2:kEnd]...)
		s.out = append(s.out, ':')
		if i, err = s.value(i, child); err != nil {
			return i, err
		}
		if drop {
			s.out = s.out[:mark]
		} else {
			first = false
		}
		i = s.space(i)
		if i >= len(s.in) {
			return i, errSlim
		}
		if s.in[i] == '}' {
			s.out = append(s.out, '}')
			return i + 1, nil
		}
		if s.in[i] != ',' {
			return i, errSlim
		}
		i = s.space(i + 1)
	}
}
