package stdio

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// paramBinding mirrors one argument into an Mcp-Param-{Header} header
// (x-mcp-header, 2026-07-28 Streamable HTTP).
type paramBinding struct {
	path   []string
	header string
}

// learnParams records the x-mcp-header bindings of the tools in a
// tools/list result, so later calls carry the headers the server expects.
func (b *bridge) learnParams(result json.RawMessage) {
	var list struct {
		Tools []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"inputSchema"`
		} `json:"tools"`
	}
	if json.Unmarshal(result, &list) != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range list.Tools {
		if !bytes.Contains(t.InputSchema, []byte("x-mcp-header")) {
			delete(b.params, t.Name)
			continue
		}
		var s schemaNode
		if json.Unmarshal(t.InputSchema, &s) != nil {
			continue
		}
		b.params[t.Name] = s.bindings(nil, nil)
	}
}

type schemaNode struct {
	Header     string                `json:"x-mcp-header"`
	Properties map[string]schemaNode `json:"properties"`
}

// bindings collects annotations reachable through "properties" only, as
// the spec requires.
func (n schemaNode) bindings(prefix []string, out []paramBinding) []paramBinding {
	for name, p := range n.Properties {
		path := append(append([]string(nil), prefix...), name)
		if p.Header != "" {
			out = append(out, paramBinding{path: path, header: p.Header})
		}
		out = p.bindings(path, out)
	}
	return out
}

func setParamHeaders(h http.Header, bindings []paramBinding, args json.RawMessage) {
	var root any
	if json.Unmarshal(args, &root) != nil {
		return
	}
	for _, pb := range bindings {
		v := root
		for _, k := range pb.path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case bool:
			s = strconv.FormatBool(x)
		case float64:
			if x != math.Trunc(x) || math.Abs(x) > 1<<53-1 {
				continue
			}
			s = strconv.FormatInt(int64(x), 10)
		default:
			continue // absent, null or not a primitive: no header
		}
		h.Set("Mcp-Param-"+pb.header, encodeHeaderValue(s))
	}
}

// encodeHeaderValue applies the spec's Base64 sentinel to values that are
// not plain visible ASCII (or that look like the sentinel themselves).
func encodeHeaderValue(s string) string {
	plain := s == "" || (s[0] != ' ' && s[0] != '\t' && s[len(s)-1] != ' ' && s[len(s)-1] != '\t')
	for i := 0; plain && i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			plain = false
		}
	}
	if plain && !(strings.HasPrefix(s, "=?base64?") && strings.HasSuffix(s, "?=")) {
		return s
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}
