package mcp

import (
	"math"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// paramHeader mirrors one argument into Mcp-Param-{name} (x-mcp-header,
// 2026-07-28). Operators may annotate input schemas with it; the server
// then checks that the header and the body agree, as the spec requires of
// servers that read the body.
type paramHeader struct {
	path   []string
	header string // full header name, "Mcp-Param-" + x-mcp-header
}

// paramHeaders collects x-mcp-header annotations reachable from the schema
// root through "properties" only.
func paramHeaders(schema map[string]any, prefix []string, out []paramHeader) []paramHeader {
	props, _ := schema["properties"].(map[string]any)
	for name, p := range props {
		ps, ok := p.(map[string]any)
		if !ok {
			continue
		}
		path := append(append([]string(nil), prefix...), name)
		if h, ok := ps["x-mcp-header"].(string); ok && h != "" {
			out = append(out, paramHeader{path: path, header: "Mcp-Param-" + h})
		}
		out = paramHeaders(ps, path, out)
	}
	return out
}

// checkParamHeaders validates the Mcp-Param-* headers of a modern tools/call
// against its arguments.
func checkParamHeaders(ctx *fasthttp.RequestCtx, t *Tool, args []byte) *rpcError {
	if len(t.paramHeaders) == 0 {
		return nil
	}
	var root any = map[string]any{}
	if len(args) > 0 {
		root, _ = rpc.DecodeValue(args)
	}
	for _, ph := range t.paramHeaders {
		v := root
		for _, k := range ph.path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		raw := ctx.Request.Header.Peek(ph.header)
		if v == nil {
			if len(raw) > 0 {
				return headerMismatch("unexpected " + ph.header + " header for an absent argument")
			}
			continue
		}
		if len(raw) == 0 {
			return headerMismatch("missing " + ph.header + " header")
		}
		hv, ok := decodeHeaderValue(raw)
		if !ok {
			return headerMismatch(ph.header + " header has invalid Base64 encoding")
		}
		if !primitiveEqual(string(hv), v) {
			return headerMismatch(ph.header + " header value does not match the argument")
		}
	}
	return nil
}

func primitiveEqual(h string, v any) bool {
	switch x := v.(type) {
	case string:
		return h == x
	case bool:
		return h == strconv.FormatBool(x)
	case interface{ Float64() (float64, error) }:
		want, err1 := x.Float64()
		got, err2 := strconv.ParseFloat(h, 64)
		return err1 == nil && err2 == nil && want == got && want == math.Trunc(want)
	}
	return false
}
