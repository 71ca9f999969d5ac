package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/auth"
)

// fasthttpCallRequest is what callExchangeFasthttp and Proxy.exchange
// write upstream for cr: the reference appendCallRequest must agree with.
func fasthttpCallRequest(t testing.TB, u *upstream, r *Route, cr *CallRequest, reqID []byte) []byte {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	buildCallRequest(req, cr, r, reqID)
	// As Proxy.exchange and roundTrip do.
	uri := req.URI()
	uri.SetPathBytes(appendUpstreamPath(nil, u.base, cr.Path))
	req.Header.SetHost(u.host)
	uri.SetHost(u.host)
	uri.SetSchemeBytes(schemeHTTP)
	uri.DisablePathNormalizing = true
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := req.Write(bw); err != nil {
		t.Fatalf("fasthttp writes the request: %v", err)
	}
	bw.Flush()
	return buf.Bytes()
}

// parsedRequest is a request as an upstream (fasthttp's parser) reads it:
// everything but header names' case and order.
func parsedRequest(t testing.TB, raw []byte) string {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.DisableNormalizing()
	br := bufio.NewReader(bytes.NewReader(raw))
	if err := req.Read(br); err != nil {
		t.Fatalf("read %q: %v", raw, err)
	}
	if br.Buffered() > 0 {
		t.Fatalf("%q: %d bytes past the request", raw, br.Buffered())
	}
	var lines []string
	for k, v := range req.Header.All() {
		lines = append(lines, strings.ToLower(string(k))+": "+string(v))
	}
	sort.Strings(lines)
	return fmt.Sprintf("%s %s\n%s\n\n%q", req.Header.Method(), req.Header.RequestURI(), strings.Join(lines, "\n"), req.Body())
}

// FuzzCallRawEquivalence: for every call plainCall takes, the request
// appendCallRequest writes reads, for an upstream, exactly as the one
// fasthttp wrote for Call before: method, target, every header field and
// value, body.
func FuzzCallRawEquivalence(f *testing.F) {
	f.Add("GET", "/items/abc-123", "", "", "", "", "", "", false)
	f.Add("POST", "/orders", "dry=1", `{"sku":"a"}`, "", "X-Trace-Note", "x", "bob", true)
	f.Add("POST", "", "", "", "", "", "", "", false)
	f.Add("PUT", "/a%20b", "q=%C3%A9&x", "hello", "text/plain; charset=utf-8", "Accept", "application/json", "", true)
	f.Add("DELETE", "/x", "", "", "", "Content-Type", "text/plain", "", false)
	f.Add("GET", "/x", "", "body on a GET", "", "X-Api-Key", "secret", "carol", false)
	f.Add("HEAD", "/x", "", "", "", "Host", "evil", "", false)
	f.Add("PATCH", "/x", "", "{}", "", "x-a", "v\r\nX-Injected: 1", "", false)
	f.Add("GET", "/x y", "", "", "", "", "", "", false)
	f.Add("G\tT", "/x", "", "", "", "", "", "", false)
	f.Add("GET", "/x", "", "", "", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "", true)
	f.Fuzz(func(t *testing.T, method, path, query, body, ct, hname, hvalue, consumer string, upAuth bool) {
		r := &Route{Tenant: "acme"}
		if upAuth {
			r.upstreamHeader, r.upstreamHeaderFold, r.upstreamValue = "X-Upstream-Key", "x-upstream-key", []byte("Bearer s3cret")
		}
		u := &upstream{host: "127.0.0.1:8080", base: "/v1"}
		cr := &CallRequest{Tenant: "acme", Tool: "t", Method: method, Path: []byte(path), Query: []byte(query),
			Body: []byte(body), ContentType: ct}
		if hname != "" {
			cr.Header = append(cr.Header, [2][]byte{[]byte(hname), []byte(hvalue)}, [2][]byte{[]byte("X-Second"), []byte("2")})
		}
		if consumer != "" {
			cr.Principal = &auth.Principal{Consumer: consumer}
		}
		if !plainCall(r, cr) {
			return // fasthttp's request, as before
		}
		if cr.Principal != nil && !validValue([]byte(consumer)) {
			return // a consumer name comes from a validated spec
		}
		reqID := []byte("0123456789abcdef")
		raw := appendCallRequest(nil, u, r, cr, consumer, reqID, nil, nil)
		want := parsedRequest(t, fasthttpCallRequest(t, u, r, cr, reqID))
		if got := parsedRequest(t, raw); got != want {
			t.Fatalf("from lines:\n%s\nfasthttp:\n%s\nraw: %q", got, want, raw)
		}
	})
}

// TestCallPaths: a call written from lines and one fasthttp writes (a
// repeated header sends it there) reach a real upstream the same, over
// kept-alive connections, answers and all.
func TestCallPaths(t *testing.T) {
	up := newUpstream(t, "a")
	up.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"method":%q,"uri":%q,"ct":%q,"tenant":%q,"x":%s}`, r.Method, r.URL.RequestURI(),
			r.Header.Get("Content-Type"), r.Header.Get(hdrTenant), jsonList(r.Header.Values("X-A")))
	})
	e := newEnv(t, tool("acme", "svc", up.URL, ""))
	for i, c := range []struct {
		hdr  [][2][]byte
		want string
	}{
		{[][2][]byte{{[]byte("X-A"), []byte("1")}}, `"x":["1"]`},
		{[][2][]byte{{[]byte("X-A"), []byte("1")}, {[]byte("x-a"), []byte("2")}}, `"x":["2"]`}, // fasthttp keeps the last
	} {
		for range 3 { // kept-alive connections: later requests are written ahead
			cr := &CallRequest{Tenant: "acme", Tool: "svc", Method: "POST", Path: []byte("/p"), Query: []byte("q=1"),
				Header: c.hdr, Body: []byte(`{"n":1}`)}
			if i == 0 != plainCall(e.p.table.Load().byTool[toolKey{"acme", "svc"}], cr) {
				t.Fatalf("case %d: plainCall = %v", i, !(i == 0))
			}
			resp, err := e.p.Call(context.Background(), cr)
			if err != nil {
				t.Fatal(err)
			}
			body := string(resp.Body)
			resp.Release()
			for _, w := range []string{`"method":"POST"`, `"uri":"/p?q=1"`, `"ct":"application/json"`, `"tenant":"acme"`, c.want} {
				if !strings.Contains(body, w) {
					t.Fatalf("case %d: %s lacks %s", i, body, w)
				}
			}
		}
	}
}

func jsonList(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}
