package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingUpstream is an in-test upstream for stoad that keeps the
// headers of every request it receives.
type recordingUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		u.mu.Lock()
		u.seen = append(u.seen, h)
		u.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *recordingUpstream) requests() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.seen...)
}

// rawHTTP writes raw to stoad's --listen on a fresh connection and returns
// what stoad sends until it closes the connection.
func rawHTTP(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil && len(b) == 0 {
		t.Fatalf("no answer to %q: %v", raw, err)
	}
	return string(b)
}

// TestProxyRequestHygieneE2E drives the real stoad with the request shapes
// of the outside review (#10) and checks what the upstream received: Host
// and target userinfo, versions, framing, forwarding headers, credential
// twins, Expect, and a readTimeout applied with `stoa apply` cutting a
// slow client that connected before it.
func TestProxyRequestHygieneE2E(t *testing.T) {
	up := newRecordingUpstream(t)
	const toolSpec = "apiVersion: stoa.io/v1alpha1\nkind: Tool\nmetadata: {name: echo, namespace: acme}\n" +
		"spec:\n  protocol: rest\n  upstream: UPSTREAM_URL\n  auth: {type: apiKey}\n" +
		"---\napiVersion: stoa.io/v1alpha1\nkind: Subscription\nmetadata: {name: web-shop-echo, namespace: acme}\n" +
		"spec: {consumer: web-shop, plan: standard, tool: echo}\n"
	e := newProxyEnv(t, map[string]string{"zz-echo.yaml": strings.ReplaceAll(toolSpec, "UPSTREAM_URL", up.srv.URL)})
	key, _ := e.key("acme", "web-shop")
	addr := e.D.Listen
	cred := "X-Api-Key: " + key + "\r\n"

	for _, c := range []struct{ name, raw, status, code string }{
		{"Host userinfo", "GET /acme/echo/x HTTP/1.1\r\nHost: admin:pw@x\r\n" + cred + "\r\n", "400", "bad_request"},
		{"target userinfo", "GET http://admin:pw@gw/acme/echo/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "400", "bad_request"},
		{"target host mismatch", "GET http://other/acme/echo/x HTTP/1.1\r\nHost: gw\r\n" + cred + "\r\n", "400", "bad_request"},
		{"HTTP/3.9", "GET /acme/echo/x HTTP/3.9\r\nHost: gw\r\n" + cred + "\r\n", "505", "http_version_not_supported"},
		{"bare LF", "GET /acme/echo/x HTTP/1.1\nHost: gw\n" + strings.TrimSuffix(cred, "\r\n") + "\n\n", "400", "bad_request"},
		{"obs-fold", "GET /acme/echo/x HTTP/1.1\r\nHost: gw\r\n" + cred + "X-A: 1\r\n 2\r\n\r\n", "400", "bad_request"},
		{"chunk size space", "POST /acme/echo/x HTTP/1.1\r\nHost: gw\r\n" + cred + "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", "400", "bad_request"},
		{"TE identity", "POST /acme/echo/x HTTP/1.1\r\nHost: gw\r\n" + cred + "Transfer-Encoding: identity\r\n\r\nhello", "400", "bad_request"},
		{"credential twin", "GET /acme/echo/x HTTP/1.1\r\nHost: gw\r\n" + cred + "X_Api_Key: " + key + "\r\nConnection: close\r\n\r\n", "400", "bad_request"},
		{"Expect over the body limit", "POST /acme/echo/x HTTP/1.1\r\nHost: gw\r\n" + cred + "Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n", "413", "body_too_large"},
	} {
		got := rawHTTP(t, addr, c.raw)
		if !strings.HasPrefix(got, "HTTP/1.1 "+c.status+" ") || !strings.Contains(got, `"error":"`+c.code+`"`) || strings.Contains(got, "100 Continue") {
			t.Errorf("%s: stoad answered %q, want %s %s", c.name, got, c.status, c.code)
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("refused requests reached the upstream: %v", up.requests())
	}

	// Accepted: absolute-form naming the Host, with forwarding headers the
	// client has no business sending.
	got := rawHTTP(t, addr, "GET http://gw/acme/echo/x HTTP/1.1\r\nHost: gw\r\n"+cred+
		"X-Forwarded-Port: 1\r\nX-Forwarded-Prefix: /admin\r\nTrue-Client-IP: 6.6.6.6\r\nHTTP2-Settings: AAMAAABk\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("accepted request: %q", got)
	}
	seen := up.requests()
	if len(seen) != 1 {
		t.Fatalf("upstream got %d requests", len(seen))
	}
	h := seen[0]
	for _, n := range []string{"Authorization", "X-Api-Key", "X-Forwarded-Port", "X-Forwarded-Prefix", "True-Client-IP", "HTTP2-Settings"} {
		if v := h.Values(n); len(v) != 0 {
			t.Errorf("upstream received %s: %q", n, v)
		}
	}
	if v := h.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
		t.Errorf("upstream X-Forwarded-For %q", v)
	}

	// A slow client connected under the default readTimeout (30s) is cut
	// once `stoa apply` makes it 1s.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(bufio.NewReader(c))
		done <- string(b)
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		msg := "GET /acme/echo/x HTTP/1.1\r\nHost: gw\r\nX-Slow: " + strings.Repeat("s", 100000)
		for i := 0; i < len(msg); i++ {
			if _, err := c.Write([]byte{msg[i]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	e.write("zz-gateway.yaml", "apiVersion: stoa.io/v1alpha1\nkind: Gateway\nmetadata: {name: default}\nspec:\n  limits: {readTimeout: 1s, readHeaderTimeout: 1s}\n")
	e.apply()
	select {
	case got := <-done:
		if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
			t.Fatalf("slow client answered %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("slow client still connected 20s after readTimeout 1s was applied")
	}
}
