package argmap

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestMap(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		path        string
		in          map[string]string
		args        string
		wantPath    string
		wantQuery   string
		wantBody    string
		wantHeaders string // "Name: value; Name: value"
		wantErr     string
	}{
		{name: "get with path and query", method: "GET", path: "/invoices/{id}",
			args:     `{"id":"inv 1/2","expand":"lines","limit":10,"draft":false}`,
			wantPath: "/invoices/inv%201%2F2", wantQuery: "expand=lines&limit=10&draft=false"},
		{name: "no args", method: "GET", path: "/health", args: ``, wantPath: "/health"},
		{name: "null args", method: "GET", path: "/health", args: `null`, wantPath: "/health"},
		{name: "post body", method: "POST", path: "/invoices", args: `{"amount": 12.50, "lines":[{"sku":"a"}] }`,
			wantPath: "/invoices", wantBody: `{"amount":12.50,"lines":[{"sku":"a"}]}`},
		{name: "post no body args", method: "POST", path: "/jobs/{id}/run", args: `{"id":7}`, wantPath: "/jobs/7/run"},
		{name: "array query repeats", method: "GET", path: "/search", args: `{"tag":["a b","c",null],"q":null}`,
			wantPath: "/search", wantQuery: "tag=a%20b&tag=c"},
		{name: "object in query is json", method: "DELETE", path: "/x", args: `{"f": {"a": 1}}`,
			wantPath: "/x", wantQuery: "f=%7B%22a%22%3A1%7D"},
		{name: "static query kept", method: "GET", path: "/s?v=2", args: `{"q":"x"}`, wantPath: "/s", wantQuery: "v=2&q=x"},
		{name: "in overrides", method: "POST", path: "/items/{id}",
			in:       map[string]string{"trace": "header", "dry": "query", "filter": "body"},
			args:     `{"id":"a","trace":"t-1","dry":true,"filter":{"x":1},"name":"n"}`,
			wantPath: "/items/a", wantQuery: "dry=true", wantBody: `{"filter":{"x":1},"name":"n"}`, wantHeaders: "Trace: t-1"},
		{name: "header array", method: "GET", path: "/", in: map[string]string{"x-tags": "header"}, args: `{"x-tags":["a",1]}`,
			wantPath: "/", wantHeaders: "X-Tags: a, 1"},
		{name: "unicode path escaped", method: "GET", path: "/u/{n}", args: `{"n":"é\u0000"}`, wantPath: "/u/%C3%A9%00"},
		{name: "dotdot refused", method: "GET", path: "/files/{name}", args: `{"name":".."}`, wantErr: `argument name: must not be "." or ".."`},
		{name: "dotdot inside segment ok", method: "GET", path: "/files/{name}.json", args: `{"name":".."}`, wantPath: "/files/...json"},
		{name: "empty segment refused", method: "GET", path: "/files/{name}", args: `{"name":""}`, wantErr: "must not be empty"},
		{name: "missing path arg", method: "GET", path: "/invoices/{id}", args: `{}`, wantErr: "argument id: missing"},
		{name: "object in path", method: "GET", path: "/invoices/{id}", args: `{"id":{}}`, wantErr: "argument id: a path parameter must be"},
		{name: "crlf header refused", method: "GET", path: "/", in: map[string]string{"x": "header"}, args: `{"x":"a\r\nEvil: 1"}`, wantErr: "control characters"},
		{name: "not object", method: "GET", path: "/", args: `[1]`, wantErr: "arguments must be a JSON object"},
		{name: "duplicate args", method: "POST", path: "/", args: `{"a":1,"a":2}`, wantErr: "duplicate argument"},
		// payload: one argument is the whole body (arrays, oneOf, scalars).
		{name: "payload array", method: "POST", path: "/repos/{repo}/labels", in: map[string]string{"body": "payload", "dry": "query"},
			args: `{"repo":"x","body":["bug", "help wanted"],"dry":true}`, wantPath: "/repos/x/labels", wantQuery: "dry=true", wantBody: `["bug", "help wanted"]`},
		{name: "payload string", method: "PUT", path: "/notes", in: map[string]string{"text": "payload"}, args: `{"text":"hi"}`,
			wantPath: "/notes", wantBody: `"hi"`},
		{name: "payload object", method: "PATCH", path: "/x", in: map[string]string{"b": "payload"}, args: `{"b":{"a":1}}`,
			wantPath: "/x", wantBody: `{"a":1}`},
		{name: "payload absent", method: "POST", path: "/x", in: map[string]string{"b": "payload"}, args: `{}`, wantPath: "/x"},
		{name: "payload on GET", method: "GET", path: "/x", in: map[string]string{"b": "payload"}, args: `{"b":[1]}`, wantPath: "/x", wantBody: `[1]`},
		{name: "payload and a default body member", method: "POST", path: "/x", in: map[string]string{"b": "payload"}, args: `{"b":[1],"c":2}`,
			wantErr: "argument c: unexpected: the request body is the argument b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.method, tt.path, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var r Request
			err = p.Map([]byte(tt.args), &r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Path) != tt.wantPath || string(r.Query) != tt.wantQuery || string(r.Body) != tt.wantBody {
				t.Errorf("got path %q query %q body %q\nwant path %q query %q body %q", r.Path, r.Query, r.Body, tt.wantPath, tt.wantQuery, tt.wantBody)
			}
			var hs []string
			for _, h := range r.Header {
				hs = append(hs, h.Name+": "+string(h.Value))
			}
			if got := strings.Join(hs, "; "); got != tt.wantHeaders {
				t.Errorf("headers = %q, want %q", got, tt.wantHeaders)
			}
			if r.Body != nil && !json.Valid(r.Body) {
				t.Errorf("body %s is not valid JSON", r.Body)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		method, path string
		in           map[string]string
		want         string
	}{
		{"TRACE", "/", nil, "unsupported method"},
		{"GET", "/a/{id", nil, "unclosed"},
		{"GET", "/a/{}", nil, "bad placeholder"},
		{"GET", "/a/{id}/{id}", nil, "twice"},
		{"GET", "/a", map[string]string{"id": "path"}, "no {id} placeholder"},
		{"GET", "/a/{id}", map[string]string{"id": "query"}, "placeholder"},
		{"GET", "/a", map[string]string{"x": "cookie"}, "not path, query, header, body or payload"},
		{"POST", "/a", map[string]string{"x": "payload", "y": "payload"}, "in.y: x is already the payload"},
		{"POST", "/a", map[string]string{"x": "payload", "y": "body"}, "in.y: body, but x is the whole body"},
		{"POST", "/a/{x}", map[string]string{"x": "payload"}, "placeholder"},
		{"GET", "/a", map[string]string{"host": "header"}, "cannot be set"},
		{"GET", "/a", map[string]string{"bad name": "header"}, "not a valid header name"},
	}
	for _, tt := range tests {
		if _, err := Compile(tt.method, tt.path, tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%s %s %v) = %v, want %q", tt.method, tt.path, tt.in, err, tt.want)
		}
	}
}

// FuzzArgMap maps arbitrary arguments through a few plans and checks the
// invariants the proxy relies on: no panic, the path stays below its
// template's literal prefix with no raw reserved characters from values,
// the query and headers are injection-free, and the body is valid JSON.
func FuzzArgMap(f *testing.F) {
	for _, s := range []string{`{"id":"a/../b","q":["x","y"],"h":"v"}`, `{"id":1,"body":{"n":[1,2]}}`, `{"id":".."}`,
		`{"id":"\u0000\r\n","h":"a\r\nb"}`, `{}`, `null`, `{"id":true,"q":{"a":"b"}}`} {
		f.Add([]byte(s))
	}
	var plans []*Plan
	var slashes []int
	for _, c := range []struct {
		m, p string
		in   map[string]string
	}{
		{"GET", "/v1/items/{id}", map[string]string{"h": "header"}},
		{"POST", "/v1/items/{id}/sub", map[string]string{"q": "query"}},
		{"PATCH", "/v1/{id}.json?static=1", map[string]string{"h": "header", "body": "body"}},
		{"PUT", "/v1/{id}", map[string]string{"body": "payload", "q": "query"}},
	} {
		p, err := Compile(c.m, c.p, c.in)
		if err != nil {
			f.Fatal(err)
		}
		plans = append(plans, p)
		slashes = append(slashes, strings.Count(strings.Split(c.p, "?")[0], "/"))
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		if !json.Valid(args) && len(args) > 0 {
			return // the server rejects invalid JSON before mapping
		}
		for pi, p := range plans {
			var r Request
			if err := p.Map(args, &r); err != nil {
				continue
			}
			if !strings.HasPrefix(string(r.Path), "/v1/") {
				t.Fatalf("path %q escaped its prefix", r.Path)
			}
			if n := strings.Count(string(r.Path), "/"); n != slashes[pi] {
				t.Fatalf("path %q has %d segments, template has %d", r.Path, n, slashes[pi])
			}
			for _, c := range string(r.Path) {
				if c == '?' || c == '#' || c < 0x21 || c > 0x7e {
					t.Fatalf("path %q contains raw %q from a value", r.Path, c)
				}
			}
			for _, seg := range strings.Split(string(r.Path), "/") {
				if seg == ".." || seg == "." {
					t.Fatalf("path %q has a dot segment", r.Path)
				}
			}
			if _, err := url.ParseQuery(string(r.Query)); err != nil {
				t.Fatalf("query %q does not parse: %v", r.Query, err)
			}
			for _, c := range string(r.Query) {
				if c < 0x21 || c > 0x7e || c == '#' {
					t.Fatalf("query %q contains raw %q", r.Query, c)
				}
			}
			for _, h := range r.Header {
				for _, c := range h.Value {
					if c == '\r' || c == '\n' || c == 0 {
						t.Fatalf("header %s has control byte %q", h.Name, c)
					}
				}
			}
			if r.Body != nil && !json.Valid(r.Body) {
				t.Fatalf("body %q is not valid JSON", r.Body)
			}
		}
	})
}

func BenchmarkMap(b *testing.B) {
	p, err := Compile("GET", "/tenants/{tenant}/invoices/{id}", map[string]string{"trace": "header"})
	if err != nil {
		b.Fatal(err)
	}
	args := []byte(`{"tenant":"acme","id":"inv-42","expand":["lines","tax"],"limit":20,"trace":"abc"}`)
	var r Request
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Map(args, &r); err != nil {
			b.Fatal(err)
		}
	}
}
