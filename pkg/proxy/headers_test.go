package proxy

import (
	"strings"
	"testing"
)

// TestInjectedHeaders: X-Stoa-Tenant, X-Stoa-Consumer and X-Request-Id
// reach the upstream; the client's copies of them, and of any X-Stoa-*
// header, do not.
func TestInjectedHeaders(t *testing.T) {
	up := newUpstream(t, "u")
	e := newEnv(t, tenant("acme", "")+consumers+
		tool("acme", "billing", up.URL, "auth: {type: apiKey}")+
		tool("acme", "open", up.URL+"/open", ""))
	key := e.addKey("acme", "shop", nil)
	spoof := []string{
		"X-Api-Key", key,
		"X-Stoa-Tenant", "globex",
		"X-Stoa-Consumer", "admin",
		"X-Stoa-Anything", "x",
		"x-stoa-lower", "y",
		"X-Request-Id", "spoofed-id",
		"X-Real-Ip", "6.6.6.6",
		"Forwarded", "for=6.6.6.6",
	}
	r := e.get("/acme/billing/x", spoof...)
	if r.Status != 200 {
		t.Fatalf("status %d %q", r.Status, r.Body)
	}
	h := up.last(t).Header
	want := map[string]string{
		"X-Stoa-Tenant":   "acme",
		"X-Stoa-Consumer": "shop",
		"X-Request-Id":    r.Header.Get("X-Request-Id"),
	}
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("upstream %s = %q, want [%q]", k, got, v)
		}
	}
	if id := r.Header.Get("X-Request-Id"); len(id) != 20 || id == "spoofed-id" {
		t.Errorf("response X-Request-Id %q", id)
	}
	for _, k := range []string{"X-Stoa-Anything", "X-Stoa-Lower", "X-Real-Ip", "Forwarded", "X-Api-Key"} {
		if v := h.Get(k); v != "" {
			t.Errorf("upstream received client header %s: %q", k, v)
		}
	}

	// Unauthenticated route: tenant set, no consumer, client copies gone.
	if r := e.get("/acme/open/x", spoof[2:]...); r.Status != 200 {
		t.Fatalf("open: %d", r.Status)
	}
	h = up.last(t).Header
	if h.Get("X-Stoa-Tenant") != "acme" || len(h.Values("X-Stoa-Tenant")) != 1 {
		t.Errorf("open route tenant %q", h.Values("X-Stoa-Tenant"))
	}
	if h.Get("X-Stoa-Consumer") != "" || h.Get("X-Stoa-Anything") != "" {
		t.Errorf("open route forwarded client X-Stoa-* headers: %v", h)
	}
}

// TestManyStoaHeadersStripped: more client X-Stoa-* headers than the
// stripper's fixed buffer must still all be removed.
func TestManyStoaHeadersStripped(t *testing.T) {
	up := newUpstream(t, "u")
	e := newEnv(t, tool("acme", "open", up.URL, ""))
	var hdr []string
	for i := 0; i < 20; i++ {
		hdr = append(hdr, "X-Stoa-Spoof-"+strings.Repeat("a", i+1), "v")
	}
	hdr = append(hdr, "X-Stoa-"+strings.Repeat("long", 30), "v")
	if r := e.get("/acme/open/x", hdr...); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	for k := range up.last(t).Header {
		if strings.HasPrefix(strings.ToLower(k), "x-stoa-") && k != "X-Stoa-Tenant" {
			t.Errorf("upstream received %s", k)
		}
	}
	// The attack this prevents: filler headers exhaust the stripper, then
	// a spoofed identity header rides along on an open route.
	// (net/http sends headers sorted by name: the fillers go first.)
	hdr = nil
	for i := 0; i < 8; i++ {
		hdr = append(hdr, "X-Stoa-A"+strings.Repeat("a", i), "filler")
	}
	hdr = append(hdr, "X-Stoa-Consumer", "admin", "X-Stoa-Tenant", "globex", "X-Stoa-Tenant", "globex")
	if r := e.get("/acme/open/x", hdr...); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	h := up.last(t).Header
	if got := h.Values("X-Stoa-Consumer"); len(got) != 0 {
		t.Errorf("spoofed X-Stoa-Consumer reached the upstream: %q", got)
	}
	if got := h.Values("X-Stoa-Tenant"); len(got) != 1 || got[0] != "acme" {
		t.Errorf("upstream X-Stoa-Tenant %q, want [acme]", got)
	}
}

// TestCredentialsNotForwarded: the client's API key or token is removed
// unless the tool sets forwardCredentials.
func TestCredentialsNotForwarded(t *testing.T) {
	up := newUpstream(t, "u")
	e := newEnv(t, tenant("acme", "")+consumers+
		tool("acme", "keyed", up.URL+"/keyed", "auth: {type: apiKey}")+
		tool("acme", "fwd", up.URL+"/fwd", "auth: {type: apiKey, forwardCredentials: true}")+
		tool("acme", "open", up.URL+"/open", ""))
	key := e.addKey("acme", "shop", nil)
	cases := []struct {
		name, path, header, value string
		forwarded                 bool
	}{
		{"key in X-Api-Key", "/acme/keyed/x", "X-Api-Key", key, false},
		{"key as bearer", "/acme/keyed/x", "Authorization", "Bearer " + key, false},
		{"forwardCredentials X-Api-Key", "/acme/fwd/x", "X-Api-Key", key, true},
		{"forwardCredentials bearer", "/acme/fwd/x", "Authorization", "Bearer " + key, true},
		// On an open route a stoa key is still never passed on (it is ours)…
		{"stoa key on open route", "/acme/open/x", "X-Api-Key", key, false},
		{"stoa bearer on open route", "/acme/open/x", "Authorization", "Bearer " + key, false},
		// …but the upstream's own credentials are its business.
		{"foreign bearer on open route", "/acme/open/x", "Authorization", "Bearer upstream-token", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r := e.get(c.path, c.header, c.value); r.Status != 200 {
				t.Fatalf("status %d %q", r.Status, r.Body)
			}
			got := up.last(t).Header.Get(c.header)
			if c.forwarded && got != c.value {
				t.Fatalf("%s not forwarded: %q", c.header, got)
			}
			if !c.forwarded && got != "" {
				t.Fatalf("%s forwarded: %q", c.header, got)
			}
		})
	}
}

// TestUpstreamAuthSecretRef: the upstream credential comes from the
// environment, replaces whatever the client sent, and never shows in logs.
func TestUpstreamAuthSecretRef(t *testing.T) {
	const secret = "upstream-s3cret-value-7f3a"
	t.Setenv("STOA_TEST_UPSTREAM_TOKEN", secret)
	t.Setenv("STOA_TEST_UPSTREAM_KEY", secret+"-key")
	up := newUpstream(t, "u")
	e := newEnv(t, tenant("acme", "")+consumers+
		tool("acme", "bearer", up.URL+"/b", "auth: {type: apiKey}\nupstreamAuth: {secretRef: {env: STOA_TEST_UPSTREAM_TOKEN}}")+
		tool("acme", "custom", up.URL+"/c", "upstreamAuth: {header: X-Upstream-Key, secretRef: {env: STOA_TEST_UPSTREAM_KEY}}"))
	key := e.addKey("acme", "shop", nil)
	if r := e.get("/acme/bearer/x", "Authorization", "Bearer "+key); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	if got := up.last(t).Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+secret {
		t.Fatalf("upstream Authorization %q", got)
	}
	if r := e.get("/acme/custom/x", "X-Upstream-Key", "client-value"); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	if got := up.last(t).Header.Values("X-Upstream-Key"); len(got) != 1 || got[0] != secret+"-key" {
		t.Fatalf("upstream X-Upstream-Key %q", got)
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Fatal("upstream secret in logs")
	}

	// A missing variable fails the revision, naming the variable only.
	err := e.tryApply(tool("acme", "x", up.URL, "upstreamAuth: {secretRef: {env: STOA_TEST_UNSET_VARIABLE}}"))
	if err == nil || !strings.Contains(err.Error(), "STOA_TEST_UNSET_VARIABLE") {
		t.Fatalf("want an error naming the variable, got %v", err)
	}
}
