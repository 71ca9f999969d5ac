package mcp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func readHeaders(ctx *fasthttp.RequestCtx) *reqHeaders {
	var rh reqHeaders
	rh.read(&ctx.Request.Header)
	return &rh
}

// FuzzReqHeaders: the one pass over a request's header block finds, for
// every name the endpoint reads, the value Peek returns and as many fields
// as PeekAll.
func FuzzReqHeaders(f *testing.F) {
	for _, s := range []string{
		"Host: a\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\n",
		"Host: a\r\nmcp-protocol-version: 2026-07-28\r\nMCP-METHOD: tools/call\r\nmcp-name: =?base64?YQ==?=\r\nOrigin: https://o\r\n",
		"Host: a\r\nX-Api-Key: k1\r\nx-api-key: k2\r\nAuthorization:\r\nAuthorization: Bearer y\r\nX-Stoa-Tenant: acme\r\n",
		"Host: a\r\nOrigin: \r\nX-Stoa-Tenant:  t \r\nCookie: a=b\r\nMcp-Session-Id: s\r\nMcp-Name: n\r\nMcp-Name: m\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, block []byte) {
		var h fasthttp.RequestHeader
		raw := append([]byte("POST /mcp HTTP/1.1\r\n"), block...)
		raw = append(raw, "\r\n"...)
		if h.Read(bufio.NewReader(bytes.NewReader(raw))) != nil {
			return
		}
		var rh reqHeaders
		rh.read(&h)
		for _, c := range []struct {
			name string
			got  []byte
		}{
			{"Origin", rh.origin}, {"Authorization", rh.authorization}, {"X-Api-Key", rh.apiKey},
			{HeaderTenant, rh.tenant}, {"Mcp-Protocol-Version", rh.version}, {"Mcp-Method", rh.method}, {"Mcp-Name", rh.name},
		} {
			if want := h.Peek(c.name); !bytes.Equal(c.got, want) || (len(want) == 0 && len(h.PeekAll(c.name)) == 0 && c.got != nil) {
				t.Fatalf("%s: %q, Peek %q", c.name, c.got, want)
			}
		}
		if n := len(h.PeekAll("Authorization")); rh.authorizations != n {
			t.Fatalf("%d Authorization fields counted, PeekAll has %d", rh.authorizations, n)
		}
		if n := len(h.PeekAll("X-Api-Key")); rh.apiKeys != n {
			t.Fatalf("%d X-Api-Key fields counted, PeekAll has %d", rh.apiKeys, n)
		}
	})
}

// authzBackend refuses every call it is asked about and says, per tool,
// whether it would be asked (AuthorizerFor).
type authzBackend struct {
	stubBackend
	policed map[string]bool
	asked   []string
}

func (b *authzBackend) Authorize(_ context.Context, _ Caller, t *Tool, call *CallInfo) error {
	b.asked = append(b.asked, t.Name)
	if call.Host != "gw.example" || call.Upstream == nil {
		return errors.New("bad CallInfo")
	}
	return errors.New("refused by policy p")
}

func (b *authzBackend) Authorizes(t *Tool) bool { return b.policed[t.Name] }

// TestAuthorizerFor: a tool the Authorizer says it never refuses is called
// without asking it; one it may refuse is asked, with the call's CallInfo,
// and its refusal is the isError result.
func TestAuthorizerFor(t *testing.T) {
	const policed, free = "acme__billing__get_invoice_00000", "acme__billing__get_invoice_00001"
	be := &authzBackend{policed: map[string]bool{policed: true}}
	srv := NewServer(Options{}, be)
	cat, err := BuildCatalog(1, benchObjects(10))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetCatalog(cat)
	call := func(name string) string {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/mcp")
		ctx.Request.Header.SetHost("GW.example")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyString(strings.Replace(benchCall, policed, name, 1))
		srv.Handler(&ctx)
		return string(ctx.Response.Body())
	}
	if out := call(free); strings.Contains(out, "isError") || len(be.asked) != 0 {
		t.Errorf("unpoliced tool: asked %v, answer %s", be.asked, out)
	}
	if out := call(policed); !strings.Contains(out, `"isError":true`) || !strings.Contains(out, "refused by policy p") ||
		len(be.asked) != 1 || be.asked[0] != policed {
		t.Errorf("policed tool: asked %v, answer %s", be.asked, out)
	}
}
