package proxy

import (
	"net/http"
	"net/url"
	"testing"
)

// TestRedirectMap table-tests the Location mapping (nginx's
// `proxy_redirect default`): targets at the upstream's own origin and
// under its base path move to the route; everything else is left alone.
func TestRedirectMap(t *testing.T) {
	billing := redirectMap{upHost: "10.0.0.5:9001", upBase: "/billing", prefix: []byte("/acme/billing-api"),
		scheme: []byte("https"), host: []byte("api.example.com")}
	noBase := redirectMap{upHost: "10.0.0.5:9001", prefix: []byte("/acme/billing-api"),
		scheme: []byte("http"), host: []byte("gw.local:8080")}
	root := redirectMap{upHost: "backend", upBase: "/v1", scheme: []byte("http"), host: []byte("gw")}
	tlsUp := redirectMap{upTLS: true, upHost: "secure.internal", prefix: []byte("/s"), scheme: []byte("https"), host: []byte("gw")}
	noHost := billing
	noHost.host = nil
	badHost := billing
	badHost.host = []byte("evil.com/x?")

	cases := []struct {
		name string
		m    *redirectMap
		in   string
		want string // "" = left alone
	}{
		{"absolute path under base", &billing, "/billing/invoices/1", "/acme/billing-api/invoices/1"},
		{"the base itself", &billing, "/billing", "/acme/billing-api"},
		{"the base with a slash", &billing, "/billing/", "/acme/billing-api/"},
		{"query and fragment kept", &billing, "/billing/x?a=1&b=/billing/#frag", "/acme/billing-api/x?a=1&b=/billing/#frag"},
		{"base followed by a query", &billing, "/billing?page=2", "/acme/billing-api?page=2"},
		{"path outside the base", &billing, "/other/x", ""},
		{"base as a name prefix only", &billing, "/billingx/y", ""},
		{"absolute URL of the upstream", &billing, "http://10.0.0.5:9001/billing/x", "https://api.example.com/acme/billing-api/x"},
		{"upstream URL, scheme and host case", &billing, "HTTP://10.0.0.5:9001/billing/x", "https://api.example.com/acme/billing-api/x"},
		{"upstream URL outside the base", &billing, "http://10.0.0.5:9001/other", ""},
		{"upstream URL without path", &noBase, "http://10.0.0.5:9001", "http://gw.local:8080/acme/billing-api"},
		{"upstream URL without path, with base", &billing, "http://10.0.0.5:9001", ""},
		{"other port", &billing, "http://10.0.0.5:9002/billing/x", ""},
		{"other host", &billing, "http://example.org/billing/x", ""},
		{"other scheme", &billing, "https://10.0.0.5:9001/billing/x", ""},
		{"userinfo never matches", &billing, "http://user@10.0.0.5:9001/billing/x", ""},
		{"scheme-relative upstream", &billing, "//10.0.0.5:9001/billing/x", "//api.example.com/acme/billing-api/x"},
		{"scheme-relative other host", &billing, "//example.org/billing/x", ""},
		{"relative reference", &billing, "x/y", ""},
		{"dot relative", &billing, "../y", ""},
		{"query only", &billing, "?page=2", ""},
		{"another scheme", &billing, "mailto:a@b", ""},
		{"empty", &billing, "", ""},
		{"no base: every absolute path", &noBase, "/api/", "/acme/billing-api/api/"},
		{"no base: root", &noBase, "/", "/acme/billing-api/"},
		{"route at /: prefix empty", &root, "/v1/x", "/x"},
		{"route at /: the base itself", &root, "/v1", "/"},
		{"default port written out", &root, "http://backend:80/v1/x", "http://gw/x"},
		{"default port of https", &tlsUp, "https://secure.internal:443/a", "https://gw/s/a"},
		{"https upstream, http URL", &tlsUp, "http://secure.internal/a", ""},
		{"no usable client host: a path", &noHost, "http://10.0.0.5:9001/billing/x", "/acme/billing-api/x"},
		{"unsafe client host: a path", &badHost, "http://10.0.0.5:9001/billing/x?q", "/acme/billing-api/x?q"},
	}
	for _, c := range cases {
		out, ok := c.m.mapURL(nil, []byte(c.in))
		if got := string(out); (c.want == "" && ok) || (c.want != "" && (!ok || got != c.want)) {
			t.Errorf("%s: mapURL(%q) = %q, %v; want %q", c.name, c.in, got, ok, c.want)
		}
	}
}

func TestRedirectMapRefresh(t *testing.T) {
	m := redirectMap{upHost: "up:9001", upBase: "/b", prefix: []byte("/t/r"), scheme: []byte("http"), host: []byte("gw")}
	cases := []struct{ in, want string }{
		{"5; url=/b/x", "5; url=/t/r/x"},
		{"0;URL=http://up:9001/b/x", "0;URL=http://gw/t/r/x"},
		{"3, url = '/b/x' ", "3, url = '/t/r/x' "},
		{`1; url="/b/x"`, `1; url="/t/r/x"`},
		{"5; url=/other", ""},
		{"5", ""},
		{"5; foo=/b/x", ""},
	}
	for _, c := range cases {
		out, ok := m.mapRefresh(nil, []byte(c.in))
		if got := string(out); (c.want == "" && ok) || (c.want != "" && (!ok || got != c.want)) {
			t.Errorf("mapRefresh(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

// TestRedirectRewritten: end to end, an upstream's redirects to itself
// come back pointing at the gateway route; other targets pass unchanged.
func TestRedirectRewritten(t *testing.T) {
	up := newUpstream(t, "u")
	up.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", r.URL.Query().Get("to"))
		if ref := r.URL.Query().Get("refresh"); ref != "" {
			w.Header().Set("Refresh", ref)
		}
		w.WriteHeader(http.StatusMovedPermanently)
	})
	e := newEnv(t, tool("acme", "api", up.URL, "")+tool("acme", "nested", up.URL+"/v2", "")+
		tool("acme", "rooted", up.URL+"/v3", "route: {pathPrefix: /}")+gateway("trustedProxies: [127.0.0.1]"))
	cases := []struct {
		path, want string
		headers    []string
	}{
		{"/acme/api/old?to=/api/", "/acme/api/api/", nil},
		{"/acme/api/old?to=" + up.URL + "/new", "http://gw.example/acme/api/new", []string{"Host", "gw.example"}},
		{"/acme/api/old?to=" + up.URL + "/new", "https://public.example/acme/api/new",
			[]string{"Host", "gw.example", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "public.example"}},
		{"/acme/api/old?to=https://elsewhere.example/x", "https://elsewhere.example/x", nil},
		{"/acme/api/old?to=relative/x", "relative/x", nil},
		{"/acme/nested/old?to=/v2/items/", "/acme/nested/items/", nil},
		{"/acme/nested/old?to=/v1/items/", "/v1/items/", nil},
		{"/old?to=/v3/x", "/x", nil},
	}
	for _, c := range cases {
		r := e.get(c.path, c.headers...)
		if r.Status != http.StatusMovedPermanently || r.Header.Get("Location") != c.want {
			t.Errorf("GET %s: %d Location %q, want 301 %q", c.path, r.Status, r.Header.Get("Location"), c.want)
		}
	}
	r := e.get("/acme/api/old?to=/a&refresh="+url.QueryEscape("0;url="+up.URL+"/b"), "Host", "gw")
	if got := r.Header.Get("Refresh"); got != "0;url=http://gw/acme/api/b" {
		t.Errorf("Refresh %q", got)
	}
	// Not only redirects: a 201's Location is the created resource.
	up.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/items/7")
		w.WriteHeader(http.StatusCreated)
	})
	if r := e.doBody("POST", "/acme/api/items", "{}"); r.Status != 201 || r.Header.Get("Location") != "/acme/api/items/7" {
		t.Errorf("201 Location %q", r.Header.Get("Location"))
	}
}
