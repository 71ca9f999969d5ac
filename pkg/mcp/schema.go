package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

var printer = message.NewPrinter(language.English)

// compiledSchema validates tool arguments.
type compiledSchema struct {
	schema *jsonschema.Schema
	// anyObject is set for schemas that accept every object ({"type":
	// "object"} with annotations only), which skip decoding entirely.
	anyObject bool
	// fast answers most calls of simple schemas without decoding; nil
	// when the schema uses keywords it does not implement.
	fast *fastSchema
	// source is the encoded schema; tools with equal schemas share it.
	source []byte
}

// schemaCompiler compiles input schemas for one catalog build, sharing
// compiled results between identical schemas.
type schemaCompiler struct {
	c     *jsonschema.Compiler
	cache map[string]*compiledSchema
	n     int
}

// noRemoteRefs refuses every external $ref: MCP says implementations MUST
// NOT dereference network URIs, and file:// must not read the daemon's disk.
type noRemoteRefs struct{}

func (noRemoteRefs) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not allowed", url)
}

func newSchemaCompiler() *schemaCompiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noRemoteRefs{})
	return &schemaCompiler{c: c, cache: map[string]*compiledSchema{}}
}

// annotationKeys never constrain a value.
var annotationKeys = map[string]bool{
	"type": true, "title": true, "description": true, "$schema": true, "$comment": true,
	"examples": true, "default": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

func (sc *schemaCompiler) compile(encoded []byte) (*compiledSchema, error) {
	if cs, ok := sc.cache[string(encoded)]; ok {
		return cs, nil
	}
	doc, err := rpc.DecodeValue(encoded)
	if err != nil {
		return nil, fmt.Errorf("decode input schema: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("input schema must be a JSON object")
	}
	if t, ok := obj["type"]; !ok || t != "object" {
		return nil, errors.New(`input schema must have "type": "object" at its root`)
	}
	anyObject := true
	for k := range obj {
		if !annotationKeys[k] {
			anyObject = false
		}
	}
	sc.n++
	url := fmt.Sprintf("mem://stoa/schema/%d.json", sc.n)
	if err := sc.c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("add input schema: %w", err)
	}
	s, err := sc.c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile input schema: %w", err)
	}
	cs := &compiledSchema{schema: s, anyObject: anyObject, fast: compileFast(obj), source: encoded}
	sc.cache[string(encoded)] = cs
	return cs, nil
}

// validate checks raw arguments (a JSON object or absent) and returns a
// one-line message for the model, or "".
func (cs *compiledSchema) validate(args []byte) string {
	if cs == nil || cs.anyObject { // nil: a federated tool's schema stoad cannot compile
		return ""
	}
	if cs.fast != nil && cs.fast.check(args) == fastValid {
		return ""
	}
	return cs.validateFull(args)
}

// validateFull decodes args and runs the compiled JSON Schema.
func (cs *compiledSchema) validateFull(args []byte) string {
	var v any = map[string]any{}
	if i := rpc.SkipSpace(args, 0); i < len(args) && string(args[i:]) != "null" {
		var err error
		if v, err = rpc.DecodeValue(args); err != nil {
			if err == rpc.ErrDuplicateKey {
				return "arguments contain a duplicate key"
			}
			return "arguments are not valid JSON"
		}
	}
	err := cs.schema.Validate(v)
	if err == nil {
		return ""
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	return summarize(ve)
}

// summarize flattens a validation error tree into "at '/a': reason; at
// '/b': reason", leaves only, deduplicated and sorted for stable output.
func summarize(ve *jsonschema.ValidationError) string {
	seen := map[string]bool{}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			msg := "at '" + loc + "': " + e.ErrorKind.LocalizedString(printer)
			if !seen[msg] {
				seen[msg] = true
				leaves = append(leaves, msg)
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Strings(leaves)
	const maxLeaves = 8
	if len(leaves) > maxLeaves {
		leaves = append(leaves[:maxLeaves], fmt.Sprintf("and %d more", len(leaves)-maxLeaves))
	}
	return strings.Join(leaves, "; ")
}

// defaultInputSchema is used when an operation declares no input: an object
// whose path placeholders are required strings.
func defaultInputSchema(placeholders []string) map[string]any {
	s := map[string]any{"type": "object"}
	if len(placeholders) == 0 {
		return s
	}
	props := map[string]any{}
	for _, p := range placeholders {
		props[p] = map[string]any{"type": []any{"string", "integer"}, "description": "Fills {" + p + "} in the path."}
	}
	s["properties"] = props
	req := make([]any, len(placeholders))
	for i, p := range placeholders {
		req[i] = p
	}
	s["required"] = req
	return s
}

// encodeSchema encodes a spec schema compactly with sorted keys, so equal
// schemas encode equally (and share one compiled validator). The bytes are
// encoding/json's (SetEscapeHTML(false)); the common shapes are written
// directly, which at 20,000 tools an apply notices, and anything else
// (floats, json.Number, strings that need escaping) by encoding/json.
func encodeSchema(s map[string]any) ([]byte, error) {
	return appendSchemaValue(make([]byte, 0, 256), s)
}

func appendSchemaValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendSchemaString(b, k); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = appendSchemaValue(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendSchemaValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case string:
		return appendSchemaString(b, x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case nil:
		return append(b, "null"...), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	}
	return appendMarshalled(b, v)
}

// appendSchemaString writes s as encoding/json does: as is when no byte
// needs escaping (the usual case), else through encoding/json.
func appendSchemaString(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return appendMarshalled(b, s)
		} else if c >= utf8.RuneSelf {
			// Valid UTF-8 is written as is, but for U+2028 and U+2029.
			if !utf8.ValidString(s) || strings.ContainsRune(s, '\u2028') || strings.ContainsRune(s, '\u2029') {
				return appendMarshalled(b, s)
			}
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}

func appendMarshalled(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...), nil
}
