package mcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const auth = "Authorization: Bearer " + tokAcme

func TestMalformedRequests(t *testing.T) {
	h := newHarness(t, Options{}, 0)
	tests := []struct {
		name    string
		method  string
		body    string
		headers []string
		status  int
		code    int // JSON-RPC error code; 0 means no body expected
		id      any
	}{
		{"parse error", "POST", `{"jsonrpc":"2.0","id":1,`, nil, 400, -32700, nil},
		{"empty body", "POST", ``, nil, 400, -32700, nil},
		{"not json", "POST", `hello`, nil, 400, -32700, nil},
		{"batch after 2025-03-26", "POST", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, []string{"MCP-Protocol-Version: 2025-06-18"}, 400, -32600, nil},
		{"invalid batch", "POST", `[{"jsonrpc":"2.0","id":1,"method":"ping"},]`, nil, 400, -32700, nil},
		{"scalar", "POST", `7`, nil, 400, -32600, nil},
		{"no jsonrpc", "POST", `{"id":3,"method":"ping"}`, nil, 400, -32600, float64(3)},
		{"bad jsonrpc", "POST", `{"jsonrpc":"1.0","id":3,"method":"ping"}`, nil, 400, -32600, float64(3)},
		{"no method", "POST", `{"jsonrpc":"2.0","id":"x"}`, nil, 400, -32600, "x"},
		{"null id", "POST", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, nil, 400, -32600, nil},
		{"duplicate method", "POST", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}`, nil, 400, -32600, float64(1)},
		{"array params", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}`, nil, 400, -32602, float64(1)},
		{"unknown method", "POST", `{"jsonrpc":"2.0","id":1,"method":"completion/complete"}`, nil, 200, -32601, float64(1)},
		{"unknown prompt", "POST", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"x"}}`, nil, 200, -32602, float64(1)},
		{"call without name", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, nil, 200, -32602, float64(1)},
		{"arguments not object", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"acme__billing__list","arguments":[1]}}`, nil, 200, -32602, float64(1)},
		{"duplicate argument", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"acme__billing__get_invoice","arguments":{"id":"inv-1","id":"x"}}}`, nil, 200, -32602, float64(1)},
		{"notification", "POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, 202, 0, nil},
		{"client response", "POST", `{"jsonrpc":"2.0","id":5,"result":{}}`, nil, 202, 0, nil},
		{"wrong content type", "POST", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, []string{"Content-Type: text/plain"}, 415, -32600, nil},
		{"put", "PUT", `{}`, nil, 405, -32600, nil},
		{"delete", "DELETE", ``, nil, 405, -32600, nil},
		{"legacy unsupported version header", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, []string{"MCP-Protocol-Version: 2024-11-05"}, 400, -32022, float64(1)},
		{"modern header without meta", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, []string{"MCP-Protocol-Version: 2026-07-28"}, 400, -32602, float64(1)},
		{"discover without meta", "POST", `{"jsonrpc":"2.0","id":1,"method":"server/discover"}`, nil, 400, -32602, float64(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.body, append([]string{auth}, tt.headers...)...)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tt.status, r.body)
			}
			if tt.code == 0 {
				if len(r.body) != 0 {
					t.Errorf("body = %q, want none", r.body)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			m := r.json(t)
			e, _ := m["error"].(map[string]any)
			if m["jsonrpc"] != "2.0" || e == nil || e["code"] != float64(tt.code) || e["message"] == "" {
				t.Fatalf("body = %s, want error %d", r.body, tt.code)
			}
			if m["id"] != tt.id {
				t.Errorf("id = %v, want %v", m["id"], tt.id)
			}
		})
	}
}

func TestModernEraRaw(t *testing.T) {
	h := newHarness(t, Options{PageSize: 3}, 0)
	hdr := func(method, name string) []string { return modernHeaders(tokAcme, method, name) }

	r := h.post(modernBody(1, "server/discover", ""), hdr("server/discover", "")...)
	m := r.json(t)
	res, _ := m["result"].(map[string]any)
	if r.status != 200 || res == nil || res["resultType"] != "complete" || res["cacheScope"] != "public" ||
		res["ttlMs"] != float64(30000) || res["supportedVersions"].([]any)[0] != "2026-07-28" {
		t.Fatalf("discover: %d %s", r.status, r.body)
	}
	if si := res["_meta"].(map[string]any)["io.modelcontextprotocol/serverInfo"].(map[string]any); si["name"] != "stoa" {
		t.Errorf("serverInfo = %v", si)
	}

	r = h.post(modernBody(2, "tools/list", ""), hdr("tools/list", "")...)
	res = r.json(t)["result"].(map[string]any)
	if res["cacheScope"] != "private" || res["resultType"] != "complete" || len(res["tools"].([]any)) != 3 || res["nextCursor"] == nil {
		t.Fatalf("tools/list: %s", r.body)
	}

	r = h.post(modernBody(3, "tools/call", `"name":"acme__billing__get_invoice","arguments":{"id":"inv-7"}`),
		hdr("tools/call", "acme__billing__get_invoice")...)
	res = r.json(t)["result"].(map[string]any)
	if res["resultType"] != "complete" || res["structuredContent"].(map[string]any)["id"] != "inv-7" {
		t.Fatalf("tools/call: %s", r.body)
	}
	// Mcp-Name in the Base64 sentinel form is decoded before comparing.
	r = h.post(modernBody(3, "tools/call", `"name":"acme__billing__list"`),
		hdr("tools/call", "=?base64?YWNtZV9fYmlsbGluZ19fbGlzdA==?=")...)
	if r.status != 200 || r.json(t)["result"] == nil {
		t.Fatalf("base64 Mcp-Name: %d %s", r.status, r.body)
	}

	errorCases := []struct {
		name    string
		body    string
		headers []string
		status  int
		code    float64
	}{
		{"method mismatch", modernBody(4, "tools/list", ""), hdr("tools/call", ""), 400, -32020},
		{"missing method header", modernBody(4, "tools/list", ""), modernHeaders(tokAcme, "", "")[:2], 400, -32020},
		{"name mismatch", modernBody(4, "tools/call", `"name":"acme__billing__list"`), hdr("tools/call", "acme__billing__fail"), 400, -32020},
		{"missing name header", modernBody(4, "tools/call", `"name":"acme__billing__list"`), hdr("tools/call", ""), 400, -32020},
		{"version header mismatch", modernBody(4, "tools/list", ""), []string{auth, "MCP-Protocol-Version: 2025-11-25", "Mcp-Method: tools/list"}, 400, -32020},
		{"missing version header", modernBody(4, "tools/list", ""), []string{auth, "Mcp-Method: tools/list"}, 400, -32020},
		{"unsupported version", strings.ReplaceAll(modernBody(4, "tools/list", ""), "2026-07-28", "2099-01-01"),
			[]string{auth, "MCP-Protocol-Version: 2099-01-01", "Mcp-Method: tools/list"}, 400, -32022},
		{"missing capabilities", `{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
			hdr("tools/list", ""), 400, -32602},
		{"ping removed", modernBody(4, "ping", ""), hdr("ping", ""), 404, -32601},
		{"unknown method", modernBody(4, "completion/complete", ""), hdr("completion/complete", ""), 404, -32601},
		// initialize was removed in 2026-07-28: a request of that era naming
		// it is an unknown method, not a malformed handshake.
		{"initialize removed", modernBody(4, "initialize", ""), hdr("initialize", ""), 404, -32601},
		{"initialize removed, with protocolVersion", modernBody(4, "initialize", `"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}`),
			hdr("initialize", ""), 404, -32601},
		{"initialize, header mismatch", modernBody(4, "initialize", ""), hdr("tools/list", ""), 400, -32020},
		{"initialize, unsupported version", strings.ReplaceAll(modernBody(4, "initialize", ""), "2026-07-28", "2099-01-01"),
			[]string{auth, "MCP-Protocol-Version: 2099-01-01", "Mcp-Method: initialize"}, 400, -32022},
		{"unknown prompt", modernBody(4, "prompts/get", `"name":"x"`), hdr("prompts/get", "x"), 200, -32602},
		{"resource not found", modernBody(4, "resources/read", `"uri":"stoa://tools/globex/vault"`), hdr("resources/read", "stoa://tools/globex/vault"), 200, -32602},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post(tt.body, tt.headers...)
			m := r.json(t)
			e, _ := m["error"].(map[string]any)
			if r.status != tt.status || e == nil || e["code"] != tt.code {
				t.Fatalf("%d %s, want %d with %v", r.status, r.body, tt.status, tt.code)
			}
			if tt.code == -32022 {
				data := e["data"].(map[string]any)
				if data["requested"] != "2099-01-01" || data["supported"].([]any)[0] != "2026-07-28" {
					t.Errorf("data = %v", data)
				}
			}
		})
	}

	// prompts/list: an empty list, the same for every caller.
	r = h.post(modernBody(5, "prompts/list", ""), hdr("prompts/list", "")...)
	if res, _ := r.json(t)["result"].(map[string]any); r.status != 200 || res == nil || len(res["prompts"].([]any)) != 0 ||
		res["cacheScope"] != "public" || res["resultType"] != "complete" {
		t.Errorf("modern prompts/list: %d %s", r.status, r.body)
	}
	r = h.post(`{"jsonrpc":"2.0","id":9,"method":"prompts/list"}`, auth)
	if res, _ := r.json(t)["result"].(map[string]any); r.status != 200 || res == nil || string(r.body) != `{"jsonrpc":"2.0","id":9,"result":{"prompts":[]}}` {
		t.Errorf("legacy prompts/list: %d %s", r.status, r.body)
	}
	// A legacy initialize, even with a modern MCP-Protocol-Version header
	// (the client does not know the version yet), is the handshake.
	r = h.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`, auth)
	if res, _ := r.json(t)["result"].(map[string]any); res == nil || res["capabilities"].(map[string]any)["prompts"] == nil {
		t.Errorf("initialize: %s", r.body)
	}

	// A legacy request keeps the legacy shape: no resultType.
	r = h.post(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, auth, "MCP-Protocol-Version: 2025-11-25")
	if res := r.json(t)["result"].(map[string]any); res["resultType"] != nil || res["ttlMs"] != nil {
		t.Errorf("legacy result has modern members: %s", r.body)
	}
	// Legacy resource-not-found keeps -32002.
	r = h.post(`{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"stoa://nope"}}`, auth)
	if e := r.json(t)["error"].(map[string]any); e["code"] != float64(-32002) {
		t.Errorf("legacy resource not found: %s", r.body)
	}
}

func TestInitializeNegotiation(t *testing.T) {
	h := newHarness(t, Options{Instructions: "Use stoa_tools to search."}, 0)
	for requested, want := range map[string]string{
		"2025-11-25": "2025-11-25", "2025-06-18": "2025-06-18", "2025-03-26": "2025-03-26",
		"2024-11-05": "2025-11-25", "2026-07-28": "2025-11-25", "1999-01-01": "2025-11-25",
	} {
		r := h.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+requested+
			`","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`, auth)
		res := r.json(t)["result"].(map[string]any)
		if res["protocolVersion"] != want || res["instructions"] != "Use stoa_tools to search." || r.header.Get("Mcp-Session-Id") != "" {
			t.Errorf("initialize %s: %s", requested, r.body)
		}
	}
}

// TestTenantIsolationBytes checks that calling another tenant's tool gives
// exactly the bytes of calling a tool that does not exist, in both eras.
func TestTenantIsolationBytes(t *testing.T) {
	h := newHarness(t, Options{}, 0)
	const foreign, missing = "globex__vault__get_secret", "globex__vault__get_secreX"
	legacy := func(name string) []byte {
		return h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+name+`"}}`, auth).body
	}
	modern := func(name string) []byte {
		return h.post(modernBody(1, "tools/call", `"name":"`+name+`"`), modernHeaders(tokAcme, "tools/call", name)...).body
	}
	for era, call := range map[string]func(string) []byte{"legacy": legacy, "modern": modern} {
		a, b := call(foreign), call(missing)
		if !bytes.Equal(a, bytes.ReplaceAll(b, []byte(missing), []byte(foreign))) {
			t.Errorf("%s: foreign tool answer %s differs from missing tool answer %s", era, a, b)
		}
		if !bytes.Contains(a, []byte(`"code":-32602`)) {
			t.Errorf("%s: %s", era, a)
		}
	}
	// The owner can call it.
	r := h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+foreign+`"}}`, "Authorization: Bearer "+tokGlobex)
	if !bytes.Contains(r.body, []byte(`"secret":"globex"`)) {
		t.Errorf("owner call: %s", r.body)
	}
	// Resources too.
	a := h.post(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"stoa://tools/globex/vault"}}`, auth).body
	b := h.post(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"stoa://tools/globex/vaulX"}}`, auth).body
	if !bytes.Equal(a, bytes.ReplaceAll(b, []byte("vaulX"), []byte("vault"))) {
		t.Errorf("foreign resource %s differs from missing resource %s", a, b)
	}
}

func TestAuthAndMetadata(t *testing.T) {
	h := newHarness(t, Options{}, 0)
	host := strings.TrimSuffix(strings.TrimPrefix(h.url, "http://"), "/mcp")
	wantMeta := "http://" + host + "/.well-known/oauth-protected-resource/mcp"

	r := h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer resource_metadata="`+wantMeta+`", error_description="missing bearer token"` {
		t.Errorf("no token: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	if e := r.json(t)["error"]; e == nil {
		t.Errorf("401 body: %s", r.body)
	}
	r = h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "Authorization: Bearer wrong")
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad token: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	if r := h.do("GET", "", "Accept: text/event-stream"); r.status != 401 {
		t.Errorf("GET without token: %d", r.status)
	}

	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get("http://" + host + path)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		servers, _ := doc["authorization_servers"].([]any)
		if resp.StatusCode != 200 || doc["resource"] != h.url || len(servers) != 2 ||
			servers[0] != "https://idp.example.com/realms/acme" || doc["bearer_methods_supported"].([]any)[0] != "header" {
			t.Errorf("%s: %d %v", path, resp.StatusCode, doc)
		}
	}

	// With API keys only there is no authorization server: the challenge
	// does not point to metadata (which MCP requires to list one), and the
	// metadata documents are not served.
	h3 := newHarness(t, Options{AuthorizationServers: func(string) []string { return nil }}, 0)
	r = h3.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer error_description="missing bearer token"` {
		t.Errorf("no issuer, no token: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	r = h3.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "Authorization: Bearer wrong")
	if got := r.header.Get("WWW-Authenticate"); r.status != 401 || got != `Bearer error="invalid_token", error_description="token expired"` {
		t.Errorf("no issuer, bad token: %d %q", r.status, got)
	}
	host3 := strings.TrimSuffix(strings.TrimPrefix(h3.url, "http://"), "/mcp")
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get("http://" + host3 + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("no issuer: %s answered %d, want 404", path, resp.StatusCode)
		}
	}

	// An explicit resource URL is used verbatim.
	h2 := newHarness(t, Options{ResourceURL: "https://gw.example.com/mcp"}, 0)
	r = h2.post(`{}`)
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp"`) {
		t.Errorf("challenge = %q", got)
	}
}

func TestOrigin(t *testing.T) {
	h := newHarness(t, Options{AllowedOrigins: []string{"https://app.example.com"}}, 0)
	body := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	r := h.post(body, auth, "Origin: https://evil.example.com")
	if r.status != 403 || r.json(t)["error"] == nil {
		t.Errorf("bad origin: %d %s", r.status, r.body)
	}
	r = h.post(body, auth, "Origin: https://app.example.com")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("allowed origin: %d %v", r.status, r.header)
	}
	if r = h.post(body, auth); r.status != 200 {
		t.Errorf("no origin: %d", r.status)
	}
	if r = h.do("OPTIONS", "", "Origin: https://app.example.com"); r.status != 204 || r.header.Get("Access-Control-Allow-Methods") == "" {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
}

func TestCursors(t *testing.T) {
	h := newHarness(t, Options{PageSize: 5}, 20)
	list := func(token, cursor string) map[string]any {
		params := `{}`
		if cursor != "" {
			params = `{"cursor":"` + cursor + `"}`
		}
		return h.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":`+params+`}`, "Authorization: Bearer "+token).json(t)
	}
	first := list(tokAcme, "")["result"].(map[string]any)
	cur := first["nextCursor"].(string)
	if second := list(tokAcme, cur)["result"].(map[string]any); len(second["tools"].([]any)) != 5 {
		t.Fatalf("second page: %v", second)
	}
	tampered := []byte(cur)
	tampered[3] ^= 1
	for name, c := range map[string]string{"tampered": string(tampered), "garbage": "%%%", "other tenant": cur, "empty": ""} {
		token := tokAcme
		if name == "other tenant" {
			token = tokGlobex
		}
		if name == "empty" {
			continue
		}
		e, _ := list(token, c)["error"].(map[string]any)
		if e == nil || e["code"] != float64(-32602) {
			t.Errorf("%s cursor: %v", name, e)
		}
	}
	// A reload that changes acme's tools expires acme's cursors...
	objs := testObjects(h.up.URL, 21)
	cat, _ := BuildCatalog(2, objs)
	h.srv.SetCatalog(cat)
	e, _ := list(tokAcme, cur)["error"].(map[string]any)
	if e == nil || !strings.Contains(e["message"].(string), "expired") {
		t.Errorf("stale cursor: %v", e)
	}
}

func TestStreamsRaw(t *testing.T) {
	h := newHarness(t, Options{}, 0)
	if r := h.do("GET", "", auth, "Accept: application/json"); r.status != 406 || r.json(t)["error"] == nil {
		t.Errorf("GET without text/event-stream: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "", auth, "Accept: text/event-stream", "MCP-Protocol-Version: 2026-07-28"); r.status != 405 {
		t.Errorf("modern GET: %d %s", r.status, r.body)
	}

	// subscriptions/listen: acknowledgement, then the graceful end on Close.
	body := modernBody(7, "subscriptions/listen", `"notifications":{"toolsListChanged":true,"promptsListChanged":true}`)
	req, _ := http.NewRequest("POST", h.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for _, kv := range modernHeaders(tokAcme, "subscriptions/listen", "") {
		k, v, _ := strings.Cut(kv, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("listen headers: %v", resp.Header)
	}
	events := make(chan map[string]any, 4)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				json.Unmarshal([]byte(data), &m)
				events <- m
			}
		}
		close(events)
	}()
	ack := <-events
	filter := ack["params"].(map[string]any)["notifications"].(map[string]any)
	if ack["method"] != "notifications/subscriptions/acknowledged" || filter["toolsListChanged"] != true || filter["promptsListChanged"] != nil {
		t.Fatalf("ack = %v", ack)
	}
	h.srv.Close()
	end := <-events
	res, _ := end["result"].(map[string]any)
	if end["id"] != float64(7) || res == nil || res["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"] != float64(7) {
		t.Fatalf("end of subscription = %v", end)
	}
	if _, open := <-events; open {
		t.Error("stream still open after the final result")
	}
}
