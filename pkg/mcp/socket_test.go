package mcp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/unixsock"
)

// credsBackend records the Credentials each request presents and admits
// everyone as tenant acme.
type credsBackend struct {
	mu  sync.Mutex
	got []Credentials
}

func (b *credsBackend) Authenticate(_ context.Context, c Credentials) (Caller, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// The byte slices are the server's: copy them, as a backend must.
	c.Authorization, c.APIKey = append([]byte(nil), c.Authorization...), append([]byte(nil), c.APIKey...)
	b.got = append(b.got, c)
	return Caller{Tenant: "acme"}, nil
}

func (b *credsBackend) Call(context.Context, Caller, *Tool, *UpstreamRequest) (UpstreamResponse, error) {
	return UpstreamResponse{}, ErrUnknownTool
}

func (b *credsBackend) Info(Caller) PlatformInfo { return PlatformInfo{} }

func (b *credsBackend) last(t *testing.T) Credentials {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) == 0 {
		t.Fatal("Authenticate was not called")
	}
	return b.got[len(b.got)-1]
}

const pingBody = `{"jsonrpc":"2.0","id":1,"method":"ping"}`

// TestSocketCredentials: on the unix socket, Authenticate gets the
// kernel's view of the peer, the credential headers and the tenant
// selection; repeated credential headers are refused before it is asked.
func TestSocketCredentials(t *testing.T) {
	dir, err := os.MkdirTemp("", "stoa-mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mcp.sock")
	ln, err := unixsock.Listen(path, "", "--mcp-socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	be := &credsBackend{}
	ep := NewEndpoint(NewServer(Options{}, be))
	sock := ep.ServeSocket(ln, slog.New(slog.DiscardHandler))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sock.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("socket file left behind: %v", err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	post := func(url string, hdr http.Header) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", url, strings.NewReader(pingBody))
		req.Header = hdr
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if st, body := post("http://localhost/mcp?tenant=globex", http.Header{"Authorization": {"Bearer t"}}); st != 200 {
		t.Fatalf("ping: %d %s", st, body)
	}
	c := be.last(t)
	if c.Peer == nil || c.Peer.UID != uint32(os.Geteuid()) || c.Peer.PID != int32(os.Getpid()) {
		t.Fatalf("peer: %+v", c.Peer)
	}
	if string(c.Authorization) != "Bearer t" || len(c.APIKey) != 0 || c.Tenant != "globex" || c.Time.IsZero() {
		t.Fatalf("credentials: %+v", c)
	}
	post("http://localhost/mcp?tenant=globex", http.Header{"X-Stoa-Tenant": {" initech "}, "X-Api-Key": {"k"}})
	if c := be.last(t); c.Tenant != "initech" || string(c.APIKey) != "k" {
		t.Fatalf("the header selects the tenant over the query: %+v", c)
	}

	be.mu.Lock()
	n := len(be.got)
	be.mu.Unlock()
	for _, h := range []string{"Authorization", "X-Api-Key"} {
		st, body := post("http://localhost/mcp", http.Header{h: {"a", "b"}})
		if st != 400 || !strings.Contains(body, "repeated credential header") {
			t.Fatalf("repeated %s: %d %s", h, st, body)
		}
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.got) != n {
		t.Fatal("Authenticate was asked about a request with repeated credentials")
	}
}

// TestTCPCredentials: over TCP there is no peer, and the caller carries
// the client's address.
func TestTCPCredentials(t *testing.T) {
	be := &credsBackend{}
	var remote netip.Addr
	s := NewServer(Options{}, be)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if c, ok := s.authenticate(ctx, readHeaders(ctx)); ok {
			remote = c.Remote
		}
	}}
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Shutdown()
	resp, err := http.Post("http://"+ln.Addr().String()+"/mcp", "application/json", strings.NewReader(pingBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := be.last(t); c.Peer != nil {
		t.Fatalf("a TCP request has a socket peer: %+v", c.Peer)
	}
	if remote != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("Remote = %v", remote)
	}
}
