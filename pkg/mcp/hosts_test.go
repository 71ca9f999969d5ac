package mcp

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange sends req verbatim (so Host can be anything, or missing) and
// returns the status and body.
func rawExchange(t *testing.T, addr, req string) (int, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func hostRequest(host, origin string) string {
	body := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	req := "POST /mcp HTTP/1.1\r\n"
	if host != "-" {
		req += "Host: " + host + "\r\n"
	}
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	return req + "Authorization: Bearer " + tokAcme + "\r\nContent-Type: application/json\r\nConnection: close\r\n" +
		"Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestHostCheckLoopback(t *testing.T) {
	h := newHarness(t, Options{LoopbackListen: true, AllowedHosts: []string{"mcp.example.com", "Other.Example:8443"}}, 0)
	addr := h.ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		host   string
		status int
	}{
		{addr, 200},
		{"localhost", 200},
		{"localhost:" + port, 200},
		{"localhost:1", 200}, // ports are not compared (tunnels, port mappings)
		{"LOCALHOST:" + port, 200},
		{"localhost.:" + port, 200},
		{"127.0.0.1", 200},
		{"[::1]:" + port, 200},
		{"[::1]", 200},
		{"[::ffff:127.0.0.1]:" + port, 200},
		{"mcp.example.com", 200},
		{"MCP.example.com.:443", 200},
		{"other.example", 200},
		{"evil.example.com", 403},
		{"evil.example.com:" + port, 403},
		{"localhost.evil.example.com", 403},
		{"mcp.example.com.evil", 403},
		{"127.0.0.2:" + port, 403},
		{"10.0.0.1", 403},
		{"[::2]:" + port, 403},
		{"::1", 400},
		{"localhost:http", 400},
		{"localhost:99999", 400},
		{"local host", 400},
		{"localhost\u200b", 400},
		{"[::1", 400},
		{"-", 400}, // missing: fasthttp itself refuses HTTP/1.1 without Host
	}
	for _, tt := range tests {
		status, body := rawExchange(t, addr, hostRequest(tt.host, ""))
		if status != tt.status {
			t.Errorf("Host %q: status %d, want %d (%s)", tt.host, status, tt.status, body)
			continue
		}
		if status == 403 && !strings.Contains(string(body), `"code":-32600`) {
			t.Errorf("Host %q: body %s, want a JSON-RPC error", tt.host, body)
		}
	}
}

func TestHostCheckWildcard(t *testing.T) {
	// A non-loopback listen without configured names checks nothing: the
	// names clients use (through a load balancer) are not knowable.
	h := newHarness(t, Options{}, 0)
	addr := h.ln.Addr().String()
	for _, host := range []string{"evil.example.com", "gw.example.com:443", addr} {
		if status, body := rawExchange(t, addr, hostRequest(host, "")); status != 200 {
			t.Errorf("unconfigured, Host %q: %d %s", host, status, body)
		}
	}
	// Configured names are enforced (fail closed); the connection's own IP
	// literal and the resource URL's host stay allowed.
	h = newHarness(t, Options{AllowedHosts: []string{"gw.example.com"}, ResourceURL: "https://mcp.example.org/mcp"}, 0)
	addr = h.ln.Addr().String()
	for host, want := range map[string]int{"gw.example.com": 200, "gw.example.com:8443": 200, "mcp.example.org": 200,
		addr: 200, "evil.example.com": 403, "localhost": 403, "-": 400} {
		if status, body := rawExchange(t, addr, hostRequest(host, "")); status != want {
			t.Errorf("configured, Host %q: %d, want %d (%s)", host, status, want, body)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	h := newHarness(t, Options{LoopbackListen: true, AllowedOrigins: []string{"https://app.example.com"}}, 0)
	addr := h.ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		host, origin string
		status       int
	}{
		{addr, "http://" + addr, 200},
		{"localhost:" + port, "http://localhost:" + port, 200},
		{"localhost:" + port, "HTTP://LocalHost:" + port, 200},
		{"localhost", "http://localhost", 200},
		{"localhost", "http://localhost:80", 200},
		{"localhost:443", "https://localhost", 200},
		{"[::1]:" + port, "http://[::1]:" + port, 200},
		{"localhost:" + port, "https://app.example.com", 200}, // listed
		// Not the same origin: other host, other port, no port vs a
		// non-default port, junk.
		{"localhost:" + port, "http://127.0.0.1:" + port, 403},
		{"localhost:" + port, "http://localhost:1" + port, 403},
		{"localhost", "http://localhost:8080", 403},
		{"localhost:" + port, "http://localhost:" + port + "/path", 403},
		{"localhost:" + port, "http://user@localhost:" + port, 403},
		{"localhost:" + port, "ftp://localhost:" + port, 403},
		{"localhost:" + port, "null", 403},
		{"localhost:" + port, "http://evil.example.com", 403},
		// DNS rebinding: Host and Origin agree, but the name is not ours.
		{"evil.example.com:" + port, "http://evil.example.com:" + port, 403},
	}
	for _, tt := range tests {
		status, body := rawExchange(t, addr, hostRequest(tt.host, tt.origin))
		if status != tt.status {
			t.Errorf("Host %q Origin %q: %d, want %d (%s)", tt.host, tt.origin, status, tt.status, body)
		}
	}
	// Without a trusted Host (wildcard listen, nothing configured) the
	// Origin must be listed: Host and Origin are both the attacker's.
	h = newHarness(t, Options{}, 0)
	if status, _ := rawExchange(t, h.ln.Addr().String(), hostRequest("evil.example.com", "http://evil.example.com")); status != 403 {
		t.Errorf("rebinding on an unconfigured listen: %d, want 403", status)
	}
	// ... except the connection's own IP literal, which rebinding cannot forge.
	a := h.ln.Addr().String()
	if status, _ := rawExchange(t, a, hostRequest(a, "http://"+a)); status != 200 {
		t.Errorf("same origin by IP: %d", status)
	}
}

func TestSameOriginUnit(t *testing.T) {
	for _, tt := range []struct {
		origin, host string
		want         bool
	}{
		{"http://a.example:8080", "a.example:8080", true},
		{"http://a.example:08080", "a.example:8080", true},
		{"http://a.example.", "a.example", true},
		{"https://a.example", "a.example:443", true},
		{"http://a.example", "a.example:443", false},
		{"http://a.example:80", "a.example:8080", false},
		{"http://b.example", "a.example", false},
		{"http:/a.example", "a.example", false},
		{"", "a.example", false},
	} {
		if got := sameOrigin([]byte(tt.origin), []byte(tt.host)); got != tt.want {
			t.Errorf("sameOrigin(%q, %q) = %v", tt.origin, tt.host, got)
		}
	}
}

// FuzzHostName: the kept answer of hostName is splitHost's, whatever the
// order of the Host values it sees.
func FuzzHostName(f *testing.F) {
	f.Add("127.0.0.1:8080", "LOCALHOST.", "[::ffff:10.0.0.1]:1")
	f.Add("example.com", "example.com:", "exa mple")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		s := &Server{}
		for _, h := range []string{a, a, b, a, c, c, b} {
			name, ok := s.hostName([]byte(h))
			wn, _, wok := splitHost([]byte(h))
			if name != wn || ok != wok {
				t.Fatalf("hostName(%q) = %q %v, splitHost %q %v", h, name, ok, wn, wok)
			}
		}
	})
}
