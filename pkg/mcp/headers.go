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
