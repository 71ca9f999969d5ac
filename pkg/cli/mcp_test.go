package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/cli/clitest"
)

// mcpEndpoint is an MCP server answering every request with a result that
// echoes the method, and recording the headers it was sent.
type mcpEndpoint struct {
	mu      sync.Mutex
	headers []http.Header
}

func (m *mcpEndpoint) start(t *testing.T) map[string]string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || json.Unmarshal(b, &req) != nil {
			http.Error(w, "want a JSON-RPC POST", http.StatusMethodNotAllowed)
			return
		}
		m.mu.Lock()
		m.headers = append(m.headers, r.Header.Clone())
		m.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": map[string]any{"echo": req.Method}})
	}))
	t.Cleanup(srv.Close)
	return map[string]string{"$URL": srv.URL + "/mcp"}
}

func mcpCases() []cmdCase {
	ep := &mcpEndpoint{}
	return []cmdCase{
		{name: "bridge over http", args: []string{"--url", "$URL", "--token", "stoa_sk_test", "--tenant", "acme"}, vars: ep.start,
			stdin: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}` + "\n", calls: []string{},
			out: []string{`{"id":1,"jsonrpc":"2.0","result":{"echo":"tools/list"}}`},
			check: func(t *testing.T, r runResult, fa *clitest.FakeAPI) {
				ep.mu.Lock()
				defer ep.mu.Unlock()
				if len(ep.headers) != 1 {
					t.Fatalf("the endpoint got %d requests, want 1", len(ep.headers))
				}
				h := ep.headers[0]
				if h.Get("Authorization") != "Bearer stoa_sk_test" || h.Get("X-Stoa-Tenant") != "acme" {
					t.Errorf("headers: Authorization %q, X-Stoa-Tenant %q", h.Get("Authorization"), h.Get("X-Stoa-Tenant"))
				}
			}},
		{name: "token from the environment, verbose", args: []string{"--url", "$URL", "-v"}, vars: ep.start, env: map[string]string{"STOA_TOKEN": "env-token"},
			stdin: `{"jsonrpc":"2.0","id":2,"method":"ping"}` + "\n", out: []string{`"echo":"ping"`}, noGolden: true},
		// stoad may start later: a missing socket is reported, the bridge
		// keeps running until its input ends.
		{name: "socket missing", args: []string{"--mcp-socket", "$TMP/mcp.sock"}, errOut: []string{
			"stoa mcp: cannot reach stoad at $TMP/mcp.sock", "stoa mcp: hint: is stoad running? start it with: stoad --mcp-socket $TMP/mcp.sock"}},
		{name: "not an http url", args: []string{"--url", "ftp://gw.example.com/mcp"}, code: ExitFailure, flagErr: true,
			errOut: []string{`--url "ftp://gw.example.com/mcp": want an http(s) URL such as https://gw.example.com/mcp`}},
		{name: "-o refused", args: []string{"-o", "json"}, code: ExitFailure, flagErr: true, errOut: []string{"stoa mcp prints no data: -o json does not apply"}},
		{name: "stray argument", args: []string{"acme"}, code: ExitFailure, flagErr: true},
	}
}
