package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// fillSeeds are request heads for FuzzMountFill: the mount requests, and
// heads with every field fillRequest treats apart — Host, Content-Type,
// Content-Length, User-Agent, Connection (close, keep-alive, both, twice),
// Keep-Alive, Cookie — names in any case, repeated fields, credentials,
// the MCP and tracing fields, a query, values with inner and outer blanks.
var fillSeeds = append(append([]string(nil), mountRequests...),
	"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer good\r\ncontent-type: application/json\r\nmcp-session-id: s1\r\nMCP-PROTOCOL-VERSION: 2026-07-28\r\naccept: application/json, text/event-stream\r\ncontent-length: $LEN\r\n\r\n"+mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: agent/1.0\r\nConnection: keep-alive\r\nX-Api-Key: stoa_sk_x\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n"+mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n"+mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nConnection: CLOSE\r\nKeep-Alive: close\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n"+mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nKeep-Alive: close\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n"+mcpCall,
	"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: a=1; b=2\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n"+mcpCall,
	"POST /mcp?tenant=acme&x=%41 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\ntracestate: a=b\r\nOrigin: https://app.example\r\nOrigin: https://other.example\r\nX-Custom:  two  words \t\r\nX-Empty:\r\nContent-Type: application/json\r\nContent-Length: $LEN\r\n\r\n"+mcpCall,
	"POST /mcp HTTP/1.1\r\nContent-Length: $LEN\r\nContent-Type: application/json; charset=utf-8\r\nHost: h\r\nX-Stoa-Tenant: acme\r\nX-Request-Id: r1\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\nMcp-Method: tools/call\r\nMcp-Name: acme__stock__get_stock\r\nMcp-Param-Sku: abc\r\n\r\n"+mcpCall,
	"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
	"PUT /x/y HTTP/1.1\r\nHost: 127.0.0.1\r\nUSER-AGENT: x\r\nContent-Length: 0\r\n\r\n",
)

// FuzzMountFill holds fillRequest to fasthttp's parser: for any head the
// fast parser takes, the request it fills is the one readRequest reads
// (compareRequests), both for a head parsed afresh and for one the parser
// recognises as a repeat of the last.
func FuzzMountFill(f *testing.F) {
	for _, s := range fillSeeds {
		f.Add(withLen([]byte(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fc := &fastConn{buf: make([]byte, 4096)}
		for round := range 2 {
			n := parseFastHead(in, &fc.h)
			if n <= 0 {
				return
			}
			if round == 1 && !fc.h.repeat {
				t.Fatal("a head parsed twice is not a repeat")
			}
			end := n
			if fc.h.cl > 0 {
				end += int(fc.h.cl)
			}
			if end > len(in) {
				return
			}
			b := in[:end]
			var filled, read fasthttp.Request
			if !fc.fillRequest(&filled, b) {
				if fc.h.cl > 0 && !hasField(&fc.h, "cookie") {
					t.Fatalf("not filled, with a body and no Cookie field: %q", b)
				}
				return
			}
			br := bufio.NewReader(bytes.NewReader(b))
			err := read.Header.Read(br)
			if err == nil {
				err = read.ContinueReadBody(br, 0, false)
			}
			if err != nil {
				t.Fatalf("the fast parser takes a head fasthttp refuses (%v): %q", err, b)
			}
			// serveMount closes the connection after the answer when the
			// fast head says so, as fasthttp's server does when its
			// parse does.
			if fc.h.close != read.Header.ConnectionClose() {
				t.Fatalf("fast head: close %v, fasthttp %v: %q", fc.h.close, read.Header.ConnectionClose(), b)
			}
			if d := compareRequests(&filled, &read); d != "" {
				t.Fatalf("fill and parse disagree on %s\nrequest %q", d, b)
			}
		}
	})
}

// hasField reports whether the parsed head has a field named name (lower
// case).
func hasField(h *fastHead, name string) bool {
	for i := range h.nf {
		f := &h.fields[i]
		if equalFoldLower(h.block[f.start:f.nameEnd], name) {
			return true
		}
	}
	return false
}

// compareRequests returns what differs between a and b as a handler sees
// them ("" when nothing does): the request line, the special fields, every
// field as All yields it (in order), Peek and PeekAll of every name that
// either has (as sent, lower and upper case), the header as written, the
// URI and the body.
func compareRequests(a, b *fasthttp.Request) string {
	ha, hb := &a.Header, &b.Header
	type pair struct {
		what string
		x, y any
	}
	for _, p := range []pair{
		{"method", string(ha.Method()), string(hb.Method())},
		{"request URI", string(ha.RequestURI()), string(hb.RequestURI())},
		{"protocol", string(ha.Protocol()), string(hb.Protocol())},
		{"HTTP/1.1", ha.IsHTTP11(), hb.IsHTTP11()},
		{"Host", string(ha.Host()), string(hb.Host())},
		{"Content-Type", string(ha.ContentType()), string(hb.ContentType())},
		{"Content-Length", ha.ContentLength(), hb.ContentLength()},
		{"User-Agent", string(ha.UserAgent()), string(hb.UserAgent())},
		{"connection close", ha.ConnectionClose(), hb.ConnectionClose()},
		{"multipart boundary", string(ha.MultipartFormBoundary()), string(hb.MultipartFormBoundary())},
		{"Len", ha.Len(), hb.Len()},
		{"fields", fields(ha), fields(hb)},
		{"header as written", ha.String(), hb.String()},
		{"URI", a.URI().String(), b.URI().String()},
		{"path", string(a.URI().Path()), string(b.URI().Path())},
		{"query", a.URI().QueryArgs().String(), b.URI().QueryArgs().String()},
		{"body", string(a.Body()), string(b.Body())},
	} {
		if p.x != p.y {
			return fmt.Sprintf("%s: fill %#v, parse %#v", p.what, p.x, p.y)
		}
	}
	var names []string
	for k := range ha.All() {
		names = append(names, string(k))
	}
	for k := range hb.All() {
		names = append(names, string(k))
	}
	for _, k := range names {
		for _, n := range []string{k, strings.ToLower(k), strings.ToUpper(k)} {
			if x, y := string(ha.Peek(n)), string(hb.Peek(n)); x != y {
				return fmt.Sprintf("Peek(%q): fill %q, parse %q", n, x, y)
			}
			if x, y := fmt.Sprintf("%q", ha.PeekAll(n)), fmt.Sprintf("%q", hb.PeekAll(n)); x != y {
				return fmt.Sprintf("PeekAll(%q): fill %s, parse %s", n, x, y)
			}
		}
	}
	return ""
}

func fields(h *fasthttp.RequestHeader) string {
	var s strings.Builder
	for k, v := range h.All() {
		fmt.Fprintf(&s, "%s: %s\n", k, v)
	}
	return s.String()
}
