package proxy

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

// TestNoSecretsInLogs plants a secret in every part of malformed, refused
// and proxied requests and checks that neither stoad's log (fasthttp's own
// messages included, at debug level) nor the access log ever shows it.
func TestNoSecretsInLogs(t *testing.T) {
	const secret = "PLANTEDsecret7d1e"
	access := &lockedBuffer{}
	up := newUpstream(t, "u")
	e := newEnv(t, tenant("acme", "")+consumers+
		tool("acme", "api", up.URL, "auth: {type: apiKey}")+
		tool("acme", "open", up.URL, "route: {pathPrefix: /open}")+
		gateway("accessLog: {enabled: true}\nlimits: {maxBodyBytes: 64, maxHeaders: 20}"),
		func(o *Options) { o.AccessLog = access; o.MaxHeaderBytes = 4096 })
	key := e.addKey("acme", "shop", nil)

	raws := []string{
		// Unparseable request lines and headers.
		"GET /" + secret + " HTTP/1.1\r\nHost: gw\r\nBad Header " + secret + "\r\n\r\n",
		secret + " / HTTP/1.1\r\nHost: gw\r\n\r\n",
		"GET /acme/api/x?" + secret + " HTTP/9.9\r\nHost: gw\r\n\r\n",
		"\x00\x01\x02" + secret + "\r\n\r\n",
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Stoa : " + secret + "\r\n\r\n",
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: " + secret + "\r\n\r\n",
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\nX-S: " + secret + "\r\n\r\n",
		// Refused by the gateway.
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX Stoa: " + secret + "\r\n\r\n",
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX_Stoa_Tenant: " + secret + "\r\n\r\n",
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Big: " + strings.Repeat(secret, 400) + "\r\n\r\n",
		"GET /acme/api/" + strings.Repeat(secret, 600) + " HTTP/1.1\r\nHost: gw\r\n\r\n",
		"POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + "11\r\n" + secret + "\r\n0\r\n\r\n",
		"POST /acme/api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n" + strings.Repeat(secret, 6),
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\n" + strings.Repeat("X-M: "+secret+"\r\n", 30) + "\r\n",
		// Bad, revoked and good credentials, secrets in query strings.
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nX-Api-Key: stoa_sk_" + secret + "\r\n\r\n",
		"GET /acme/api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + secret + "\r\n\r\n",
		"GET /acme/api/x?token=" + secret + " HTTP/1.1\r\nHost: gw\r\nX-Api-Key: " + key + "\r\n\r\n",
		"GET /open/x?token=" + secret + " HTTP/1.1\r\nHost: gw\r\nCookie: s=" + secret + "\r\n\r\n",
		"GET /nowhere/" + secret + " HTTP/1.1\r\nHost: gw\r\n\r\n",
	}
	for _, raw := range raws {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte(raw))
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		c.Close()
		if n == 0 {
			t.Errorf("no answer to %.60q", raw)
		}
		// (The test upstream echoes the URI; only the gateway's own
		// answers are checked.)
		if strings.Contains(string(buf[:n]), secret) && !strings.Contains(string(buf[:n]), "X-Upstream:") {
			t.Errorf("response echoes the request: %.60q -> %q", raw, buf[:n])
		}
	}
	// The proxy's log sees what happened…
	time.Sleep(50 * time.Millisecond)
	logs, acc := e.logs.String(), access.String()
	for _, out := range []struct{ name, text string }{{"log", logs}, {"access log", acc}, {"events", strings.Join(e.events.evs, "\n")}} {
		if strings.Contains(out.text, secret) {
			t.Errorf("secret in the %s:\n%s", out.name, out.text)
		}
		if strings.Contains(out.text, key) || strings.Contains(out.text, key[len("stoa_sk_")+16:]) {
			t.Errorf("api key in the %s", out.name)
		}
	}
	// …and the access log has lines for routed requests, without query
	// strings.
	lines := strings.Split(strings.TrimSpace(acc), "\n")
	if len(lines) < 3 {
		t.Fatalf("access log has %d lines:\n%s", len(lines), acc)
	}
	for _, l := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatalf("access log line is not JSON: %q", l)
		}
		for _, k := range []string{"requestId", "method", "path", "tenant", "tool", "status"} {
			if _, ok := entry[k]; !ok {
				t.Fatalf("access log line lacks %s: %q", k, l)
			}
		}
	}
}

// TestAccessLogOffByDefault: no Gateway accessLog, no lines.
func TestAccessLogOffByDefault(t *testing.T) {
	access := &lockedBuffer{}
	up := newUpstream(t, "u")
	e := newEnv(t, tool("acme", "api", up.URL, ""), func(o *Options) { o.AccessLog = access })
	e.get("/acme/api/x")
	if s := access.String(); s != "" {
		t.Fatalf("access log written while off: %q", s)
	}
}
