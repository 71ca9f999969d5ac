package mcp

import (
	"strings"

	"github.com/valyala/fasthttp"
)

// HTTPHeaders gives a Backend the HTTP request headers of an MCP request
// without fasthttp types: names lower case, repeated headers joined with
// ", " (RFC 9110 §5.3). It has the method set of policy.Headers. Valid
// only during the call it was given to.
type HTTPHeaders struct {
	h *fasthttp.RequestHeader
	m map[string]string // built on the first Len or Range
}

// Header returns the value of the header with the lower-case name.
func (x *HTTPHeaders) Header(name string) (string, bool) {
	if x == nil || x.h == nil {
		return "", false
	}
	if x.m != nil {
		v, ok := x.m[name]
		return v, ok
	}
	var v string
	n := 0
	for _, b := range x.h.PeekAll(name) {
		if n > 0 {
			v += ", "
		}
		v += string(b)
		n++
	}
	return v, n > 0
}

func (x *HTTPHeaders) all() map[string]string {
	if x.m == nil {
		x.m = map[string]string{}
		for k, v := range x.h.All() {
			name := strings.ToLower(string(k))
			if prev, ok := x.m[name]; ok {
				x.m[name] = prev + ", " + string(v)
			} else {
				x.m[name] = string(v)
			}
		}
	}
	return x.m
}

// Len is the number of distinct header names.
func (x *HTTPHeaders) Len() int {
	if x == nil || x.h == nil {
		return 0
	}
	return len(x.all())
}

// Range calls fn for every header until fn returns false.
func (x *HTTPHeaders) Range(fn func(name, value string) bool) {
	if x == nil || x.h == nil {
		return
	}
	for k, v := range x.all() {
		if !fn(k, v) {
			return
		}
	}
}

// callInfo describes a tools/call for the Authorizer, in st's storage
// (CallInfo is valid only during Authorize): a call allocates nothing but
// the lower-case Host, and that only when it differs from the last one
// st saw.
func (st *reqState) callInfo(ctx *fasthttp.RequestCtx, args []byte, up *UpstreamRequest) *CallInfo {
	host := ctx.Host()
	if st.hostStr == "" || string(st.hostRaw) != string(host) {
		st.hostRaw = append(st.hostRaw[:0], host...)
		st.hostStr = strings.ToLower(string(host))
	}
	st.hh = HTTPHeaders{h: &ctx.Request.Header}
	st.ci = CallInfo{Arguments: args, Upstream: up, Host: st.hostStr, Headers: &st.hh}
	return &st.ci
}

// reqHeaders are the request header fields the endpoint reads, found in one
// pass over the header block when a request arrives (read): fasthttp's Peek
// copies and normalizes the name it is given and then scans the block, per
// call, and a tools/call read five to seven names. Values are those Peek
// returns (the first field of the name, nil when there is none) and are
// valid as long as the request.
type reqHeaders struct {
	origin, authorization, apiKey, tenant []byte
	version, method, name                 []byte // Mcp-Protocol-Version, Mcp-Method, Mcp-Name
	// authorizations and apiKeys count the fields of those names (the unix
	// socket refuses repeated credentials).
	authorizations, apiKeys int
}

// read fills r from h. The names compared are the canonical forms the
// parser stores (it normalizes names as Peek normalizes the one it looks
// for), so the first match is the field Peek would return.
func (r *reqHeaders) read(h *fasthttp.RequestHeader) {
	*r = reqHeaders{}
	var seen uint8
	first := func(bit uint8, dst *[]byte, v []byte) {
		if seen&bit == 0 {
			seen |= bit
			*dst = v
		}
	}
	for k, v := range h.All() {
		switch len(k) {
		case len("Origin"):
			if string(k) == "Origin" {
				first(1, &r.origin, v)
			}
		case len("Authorization"): // and X-Stoa-Tenant
			switch string(k) {
			case "Authorization":
				first(2, &r.authorization, v)
				r.authorizations++
			case HeaderTenant:
				first(4, &r.tenant, v)
			}
		case len("X-Api-Key"):
			if string(k) == "X-Api-Key" {
				first(8, &r.apiKey, v)
				r.apiKeys++
			}
		case len("Mcp-Protocol-Version"):
			if string(k) == "Mcp-Protocol-Version" {
				first(16, &r.version, v)
			}
		case len("Mcp-Method"):
			if string(k) == "Mcp-Method" {
				first(32, &r.method, v)
			}
		case len("Mcp-Name"):
			if string(k) == "Mcp-Name" {
				first(64, &r.name, v)
			}
		}
	}
}
