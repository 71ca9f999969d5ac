package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Tokens understood by the fake backend.
const (
	tokAcme   = "acme-token"
	tokGlobex = "globex-token"
	tokAdmin  = "admin-token"
	// tokAcmeLimited is an acme caller allowed only billing's get_invoice
	// and list.
	tokAcmeLimited = "acme-limited-token"
)

var limitedGrants = &countingGrants{key: "shop", allow: map[string]bool{"acme__billing__get_invoice": true, "acme__billing__list": true}}

// fakeBackend authenticates bearer tokens from a table and performs real
// HTTP calls to the tool's upstream.
type fakeBackend struct {
	client *http.Client
	mu     sync.Mutex
	calls  []string
}

func (b *fakeBackend) Authenticate(_ context.Context, c Credentials) (Caller, error) {
	auth := string(c.Authorization)
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return Caller{}, &AuthError{Description: "missing bearer token"}
	}
	switch tok {
	case tokAcme:
		return Caller{Tenant: "acme", Via: "jwt", Subject: "alice"}, nil
	case tokGlobex:
		return Caller{Tenant: "globex", Via: "jwt", Subject: "bob"}, nil
	case tokAdmin:
		return Caller{Admin: true, Via: "jwt", Subject: "root"}, nil
	case tokAcmeLimited:
		return Caller{Tenant: "acme", Via: "apikey", Consumer: "shop", Grants: limitedGrants}, nil
	}
	return Caller{}, &AuthError{TokenPresent: true, Description: "token expired"}
}

func (b *fakeBackend) Call(ctx context.Context, caller Caller, tool *Tool, req *UpstreamRequest) (UpstreamResponse, error) {
	u := strings.TrimSuffix(tool.Spec.Upstream, "/") + string(req.Path)
	if len(req.Query) > 0 {
		u += "?" + string(req.Query)
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(context.Background(), req.Method, u, body)
	if err != nil {
		return UpstreamResponse{}, err
	}
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	for _, h := range req.Header {
		hr.Header.Set(h.Name, string(h.Value))
	}
	b.mu.Lock()
	b.calls = append(b.calls, req.Method+" "+hr.URL.RequestURI())
	b.mu.Unlock()
	resp, err := b.client.Do(hr)
	if err != nil {
		return UpstreamResponse{}, fmt.Errorf("connect to upstream: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return UpstreamResponse{}, err
	}
	return UpstreamResponse{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: data}, nil
}

func (b *fakeBackend) Info(caller Caller) PlatformInfo {
	return PlatformInfo{Version: "1.2.3", Health: "ok", Revision: 7}
}

// newUpstream serves a small billing API.
func newUpstream(t testing.TB) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"amount":42,"expand":%q}`, r.PathValue("id"), strings.Join(r.URL.Query()["expand"], ","))
	})
	mux.HandleFunc("POST /invoices", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"created":%s,"trace":%q}`, body, r.Header.Get("Trace"))
	})
	mux.HandleFunc("GET /list", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[1,2,3]`)
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invoice id must start with inv-"}`+strings.Repeat(" pad", 300))
	})
	mux.HandleFunc("GET /text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello\nworld")
	})
	mux.HandleFunc("GET /img", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte{0x89, 'P', 'N', 'G', 0, 1, 2})
	})
	mux.HandleFunc("GET /secret", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"secret":"globex"}`)
	})
	mux.HandleFunc("GET /bulk/{n}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"n":%q}`, r.PathValue("n"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func boolp(b bool) *bool { return &b }

// testObjects returns two tenants: acme (billing with several operations,
// bulk with nBulk operations) and globex (one secret tool).
func testObjects(upstream string, nBulk int) []*spec.Object {
	obj := func(kind spec.Kind, ns, name string, s spec.Spec) *spec.Object {
		return &spec.Object{APIVersion: spec.APIVersion, Kind: kind, Metadata: spec.Metadata{Name: name, Namespace: ns}, Spec: s}
	}
	idSchema := map[string]any{
		"type":       "object",
		"properties": map[string]any{"id": map[string]any{"type": "string", "pattern": "^inv-"}, "expand": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}},
		"required":   []any{"id"},
	}
	billing := &spec.ToolSpec{Protocol: "rest", Upstream: upstream, Description: "Acme billing.", Tags: []string{"billing"},
		Operations: []spec.Operation{
			{Name: "get_invoice", Method: "GET", Path: "/invoices/{id}", Title: "Get invoice", Description: "Fetch one invoice by id.", Input: idSchema},
			{Name: "create_invoice", Method: "POST", Path: "/invoices", Description: "Create an invoice.", In: map[string]string{"trace": "header"},
				Input: map[string]any{"type": "object", "properties": map[string]any{"amount": map[string]any{"type": "number"}, "trace": map[string]any{"type": "string"}}, "required": []any{"amount"}}},
			{Name: "list", Method: "GET", Path: "/list", Tags: []string{"listing"}},
			{Name: "fail", Method: "GET", Path: "/fail"},
			{Name: "text", Method: "GET", Path: "/text"},
			{Name: "img", Method: "GET", Path: "/img", Annotations: &spec.Annotations{OpenWorld: boolp(false)}},
		}}
	bulk := &spec.ToolSpec{Protocol: "rest", Upstream: upstream}
	for i := range nBulk {
		bulk.Operations = append(bulk.Operations, spec.Operation{Name: fmt.Sprintf("op%05d", i), Method: "GET", Path: fmt.Sprintf("/bulk/%d", i)})
	}
	secret := &spec.ToolSpec{Protocol: "rest", Upstream: upstream, Operations: []spec.Operation{{Name: "get_secret", Method: "GET", Path: "/secret"}}}
	objs := []*spec.Object{
		obj(spec.KindTenant, "", "acme", &spec.TenantSpec{Identity: &spec.TenantIdentity{Issuer: "https://idp.example.com/realms/acme"}}),
		obj(spec.KindTenant, "", "globex", &spec.TenantSpec{Identity: &spec.TenantIdentity{Issuer: "https://login.globex.example"}}),
		obj(spec.KindTool, "acme", "billing", billing),
		obj(spec.KindTool, "globex", "vault", secret),
	}
	if nBulk > 0 {
		objs = append(objs, obj(spec.KindTool, "acme", "bulk", bulk))
	}
	return objs
}

type harness struct {
	t       testing.TB
	srv     *Server
	backend *fakeBackend
	url     string
	ln      net.Listener
	up      *httptest.Server
}

func newHarness(t testing.TB, opts Options, nBulk int) *harness {
	t.Helper()
	up := newUpstream(t)
	be := &fakeBackend{client: up.Client()}
	srv := NewServer(opts, be)
	cat, err := BuildCatalog(1, testObjects(up.URL, nBulk))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetCatalog(cat)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: srv.Handler, ReadTimeout: 10 * time.Second}
	go fs.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		_ = fs.Shutdown()
	})
	return &harness{t: t, srv: srv, backend: be, url: "http://" + ln.Addr().String() + "/mcp", ln: ln, up: up}
}

// bearer adds a token to every request of an http.Client.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// connect opens an official-SDK client session; version "" lets the SDK
// pick (it tries 2026-07-28 first).
func (h *harness) connect(token, version string, copts *sdk.ClientOptions) *sdk.ClientSession {
	h.t.Helper()
	client := sdk.NewClient(&sdk.Implementation{Name: "stoa-test", Version: "1"}, copts)
	tr := &sdk.StreamableClientTransport{Endpoint: h.url, MaxRetries: -1,
		HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}, Timeout: 30 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		h.t.Fatalf("connect: %v", err)
	}
	h.t.Cleanup(func() { cs.Close() })
	return cs
}

// rawResponse is one raw HTTP exchange's result.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r rawResponse) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d %q is not JSON: %v", r.status, r.body, err)
	}
	return m
}

// post sends a raw body with headers ("Name: value" pairs).
func (h *harness) post(body string, headers ...string) rawResponse {
	return h.do(http.MethodPost, body, headers...)
}

func (h *harness) do(method, body string, headers ...string) rawResponse {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: data}
}

// modernHeaders returns the 2026-07-28 request headers for method/name.
func modernHeaders(token, method, name string) []string {
	hs := []string{"Authorization: Bearer " + token, "MCP-Protocol-Version: 2026-07-28", "Mcp-Method: " + method}
	if name != "" {
		hs = append(hs, "Mcp-Name: "+name)
	}
	return hs
}

// modernBody builds a 2026-07-28 request body with the required _meta.
func modernBody(id int, method, params string) string {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`
	if params == "" {
		params = "{" + meta + "}"
	} else {
		params = "{" + meta + "," + params + "}"
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params)
}
