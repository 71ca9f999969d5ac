// Package stdio bridges an MCP client speaking the stdio transport
// (newline-delimited JSON-RPC on stdin/stdout) to an MCP server on
// Streamable HTTP — stoad's /mcp endpoint over its unix socket or a URL.
// `stoa mcp` runs it, so it uses only the standard library (the CLI binary
// must not link fasthttp).
//
// Each message read becomes one HTTP POST. The bridge adds what the HTTP
// transport needs and stdio clients do not send: the bearer token,
// MCP-Protocol-Version (the version negotiated by initialize, or the
// request's own _meta version for 2026-07-28), Mcp-Method and Mcp-Name
// (Base64-sentinel encoded when needed), Mcp-Param-* for tools whose input
// schema carries x-mcp-header, and Mcp-Session-Id when a server issues
// one. Answers — JSON or SSE streams, including long-lived
// subscriptions/listen streams — are written back one message per line.
// After a legacy initialize, notifications from the server's GET stream are
// relayed too.
package stdio

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configure a bridge.
type Options struct {
	// Endpoint is the MCP endpoint URL, e.g. "http://127.0.0.1:8080/mcp", or
	// "http://stoad/mcp" with a Client from UnixClient.
	Endpoint string
	// Client performs the HTTP requests; default http.DefaultClient. It must
	// not have a Timeout: notification streams are long-lived.
	Client *http.Client
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Header holds extra headers for every request.
	Header http.Header
	// DisableListen turns off relaying the legacy GET notification stream.
	DisableListen bool
	// MaxConcurrent bounds requests in flight; default 16.
	MaxConcurrent int
	// MaxLineBytes bounds one input message; default 16 MiB.
	MaxLineBytes int
	// Logf receives diagnostics (never message contents); default: none.
	Logf func(format string, args ...any)
}

// UnixClient returns an HTTP client that dials the unix socket at path
// whatever the URL's host.
func UnixClient(path string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    16,
		IdleConnTimeout: 90 * time.Second,
	}}
}

// Run bridges in to the endpoint and answers to out until in ends (then it
// waits for requests in flight) or ctx is done.
func Run(ctx context.Context, in io.Reader, out io.Writer, opts Options) error {
	if opts.Endpoint == "" {
		return errors.New("run mcp bridge: no endpoint")
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 16
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 16 << 20
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := &bridge{opts: opts, out: out, ctx: ctx, inflight: map[string]context.CancelFunc{},
		sem: make(chan struct{}, opts.MaxConcurrent), params: map[string][]paramBinding{}}
	lr := newLineReader(in, opts.MaxLineBytes)
	var err error
	for {
		line, tooLong, rerr := lr.next()
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
		if ctx.Err() != nil {
			break
		}
		if tooLong {
			// The same answer the HTTP endpoint gives a body over its limit;
			// the line is dropped, the bridge goes on.
			b.writeError(nil, -32600, fmt.Sprintf("Request body too large: a message is at most %d bytes", opts.MaxLineBytes))
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		b.handle(append([]byte(nil), line...))
	}
	b.wg.Wait()
	cancel()
	b.listenWG.Wait()
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	return parent.Err()
}

type bridge struct {
	opts Options
	ctx  context.Context

	outMu sync.Mutex
	out   io.Writer

	mu        sync.Mutex
	version   string // negotiated legacy version
	sessionID string
	listening bool
	inflight  map[string]context.CancelFunc
	params    map[string][]paramBinding // tool name -> x-mcp-header bindings

	sem      chan struct{}
	wg       sync.WaitGroup
	listenWG sync.WaitGroup
}

// envelope is the part of a message the bridge reads.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Name      string          `json:"name"`
		URI       string          `json:"uri"`
		RequestID json.RawMessage `json:"requestId"`
		Arguments json.RawMessage `json:"arguments"`
		Meta      struct {
			ProtocolVersion string `json:"io.modelcontextprotocol/protocolVersion"`
		} `json:"_meta"`
	} `json:"params"`
}

func (b *bridge) write(msg []byte) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, msg); err != nil {
		b.opts.Logf("mcp bridge: dropping a malformed message from the server: %v", err)
		return
	}
	buf.WriteByte('\n')
	b.outMu.Lock()
	defer b.outMu.Unlock()
	if _, err := b.out.Write(buf.Bytes()); err != nil {
		b.opts.Logf("mcp bridge: write stdout: %v", err)
	}
}

// writeError answers id with a JSON-RPC error produced by the bridge.
func (b *bridge) writeError(id json.RawMessage, code int, msg string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	e, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
	b.write(e)
}

func (b *bridge) handle(line []byte) {
	if line[0] == '[' && json.Valid(line) {
		// A JSON-RPC batch: the server answers it when the negotiated
		// version is 2025-03-26 (the only revision with batches) and
		// refuses it otherwise, exactly as over HTTP.
		b.wg.Add(1)
		b.sem <- struct{}{}
		go func() {
			defer b.wg.Done()
			defer func() { <-b.sem }()
			b.post(b.ctx, line, &envelope{}, false)
		}()
		return
	}
	var env envelope
	if err := json.Unmarshal(line, &env); err != nil {
		if line[0] == '{' && json.Valid(line) {
			b.writeError(nil, -32600, "Invalid Request: "+err.Error())
			return
		}
		b.writeError(nil, -32700, "Parse error: invalid JSON")
		return
	}
	isRequest := len(env.ID) > 0 && env.Method != ""
	if env.Method == "notifications/cancelled" {
		b.mu.Lock()
		if c := b.inflight[string(env.Params.RequestID)]; c != nil {
			c() // on Streamable HTTP, closing the stream is the cancellation
		}
		b.mu.Unlock()
	}
	b.wg.Add(1)
	b.sem <- struct{}{}
	go func() {
		defer b.wg.Done()
		defer func() { <-b.sem }()
		ctx := b.ctx
		if isRequest {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			b.mu.Lock()
			b.inflight[string(env.ID)] = cancel
			b.mu.Unlock()
			defer func() {
				b.mu.Lock()
				delete(b.inflight, string(env.ID))
				b.mu.Unlock()
				cancel()
			}()
		}
		b.post(ctx, line, &env, isRequest)
	}()
}

func (b *bridge) setHeaders(h http.Header, env *envelope, line []byte) {
	for k, vs := range b.opts.Header {
		h[k] = append([]string(nil), vs...)
	}
	if b.opts.Token != "" {
		h.Set("Authorization", "Bearer "+b.opts.Token)
	}
	b.mu.Lock()
	version, session := b.version, b.sessionID
	bindings := b.params[env.Params.Name]
	b.mu.Unlock()
	if session != "" {
		h.Set("Mcp-Session-Id", session)
	}
	if v := env.Params.Meta.ProtocolVersion; v != "" {
		// 2026-07-28: mirror the body into headers.
		h.Set("MCP-Protocol-Version", v)
		if env.Method != "" {
			h.Set("Mcp-Method", env.Method)
		}
		switch env.Method {
		case "tools/call", "prompts/get":
			h.Set("Mcp-Name", encodeHeaderValue(env.Params.Name))
		case "resources/read":
			h.Set("Mcp-Name", encodeHeaderValue(env.Params.URI))
		}
		if env.Method == "tools/call" && len(bindings) > 0 {
			setParamHeaders(h, bindings, env.Params.Arguments)
		}
	} else if version != "" && env.Method != "initialize" {
		h.Set("MCP-Protocol-Version", version)
	}
}

func (b *bridge) post(ctx context.Context, line []byte, env *envelope, isRequest bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.opts.Endpoint, bytes.NewReader(line))
	if err != nil {
		b.fail(env, isRequest, -32603, "bridge: "+err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	b.setHeaders(req.Header, env, line)
	resp, err := b.opts.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil && b.ctx.Err() == nil {
			return // cancelled by the client
		}
		b.fail(env, isRequest, -32603, "cannot reach the MCP server at "+b.opts.Endpoint+": "+err.Error())
		return
	}
	defer resp.Body.Close()
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" && env.Method == "initialize" {
		b.mu.Lock()
		b.sessionID = sid
		b.mu.Unlock()
	}
	if resp.StatusCode == http.StatusAccepted {
		if env.Method == "notifications/initialized" {
			b.startListen()
		}
		return
	}
	ct := resp.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "text/event-stream") {
		if err := readSSE(resp.Body, func(data []byte) { b.relay(env, data) }); err != nil && ctx.Err() == nil {
			b.opts.Logf("mcp bridge: response stream: %v", err)
		}
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(b.opts.MaxLineBytes)))
	if err != nil {
		b.fail(env, isRequest, -32603, "reading the MCP server's answer: "+err.Error())
		return
	}
	if json.Valid(body) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		if resp.StatusCode >= 300 && isRequest {
			body = withID(body, env.ID)
		}
		b.relay(env, body)
		return
	}
	if json.Valid(body) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		b.write(body) // a batch's answers, one line
		return
	}
	if len(line) > 0 && line[0] == '[' {
		b.writeError(nil, -32603, fmt.Sprintf("the MCP server answered HTTP %d: %s", resp.StatusCode, excerpt(body)))
		return
	}
	b.fail(env, isRequest, -32603, fmt.Sprintf("the MCP server answered HTTP %d: %s", resp.StatusCode, excerpt(body)))
}

// relay writes one server message, learning from the answers it carries.
func (b *bridge) relay(env *envelope, msg []byte) {
	var res struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(msg, &res) == nil && len(res.Result) > 0 && bytes.Equal(res.ID, env.ID) {
		switch env.Method {
		case "initialize":
			var init struct {
				ProtocolVersion string `json:"protocolVersion"`
			}
			if json.Unmarshal(res.Result, &init) == nil {
				b.mu.Lock()
				b.version = init.ProtocolVersion
				b.mu.Unlock()
			}
		case "tools/list":
			b.learnParams(res.Result)
		}
	}
	b.write(msg)
}

func (b *bridge) fail(env *envelope, isRequest bool, code int, msg string) {
	if isRequest {
		b.writeError(env.ID, code, msg)
		return
	}
	b.opts.Logf("mcp bridge: %s", msg)
}

// withID gives an HTTP-level error answer (which a server sends without an
// id when it rejects a request before reading it, e.g. 401) the id of the
// request, so the stdio client can match it.
func withID(body []byte, id json.RawMessage) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m["error"] == nil {
		return body
	}
	if cur := m["id"]; len(cur) != 0 && string(cur) != "null" {
		return body
	}
	m["id"] = id
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// startListen opens the legacy GET stream once, after initialization.
func (b *bridge) startListen() {
	b.mu.Lock()
	if b.opts.DisableListen || b.listening || b.version == "" || b.version >= "2026-07-28" {
		b.mu.Unlock()
		return
	}
	b.listening = true
	b.mu.Unlock()
	b.listenWG.Add(1)
	go func() {
		defer b.listenWG.Done()
		backoff := 500 * time.Millisecond
		for b.ctx.Err() == nil {
			ok, retry := b.listenOnce()
			if !retry {
				return
			}
			if ok {
				backoff = 500 * time.Millisecond
			}
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
		}
	}()
}

// listenOnce relays one GET stream; it reports whether the stream opened
// and whether to try again.
func (b *bridge) listenOnce() (opened, retry bool) {
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, b.opts.Endpoint, nil)
	if err != nil {
		return false, false
	}
	req.Header.Set("Accept", "text/event-stream")
	b.setHeaders(req.Header, &envelope{}, nil)
	resp, err := b.opts.Client.Do(req)
	if err != nil {
		return false, b.ctx.Err() == nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusMethodNotAllowed {
		return false, false // the server offers no GET stream
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b.opts.Logf("mcp bridge: notification stream: HTTP %d", resp.StatusCode)
		return false, resp.StatusCode >= 500
	}
	_ = readSSE(resp.Body, func(data []byte) { b.write(data) })
	return true, true
}

// lineReader reads newline-delimited messages of at most max bytes. A
// longer line is skipped to its end and reported, so one oversized message
// does not end the session (bufio.Scanner stops for good).
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line (without its newline), or tooLong for a line
// over the limit. A last line without newline counts; io.EOF ends.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if !tooLong {
			if len(lr.buf)+len(chunk) > lr.max+1 { // +1: the newline
				tooLong = true
				lr.buf = lr.buf[:0]
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(lr.buf, []byte("\n")), tooLong, nil
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && (len(lr.buf) > 0 || tooLong):
			return lr.buf, tooLong, nil
		default:
			return nil, false, err
		}
	}
}

// readSSE calls fn with the data of each event until the stream ends.
func readSSE(r io.Reader, fn func(data []byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var data []byte
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			switch {
			case len(line) == 0:
				if len(data) > 0 {
					fn(data)
					data = nil
				}
			case line[0] == ':':
			case bytes.HasPrefix(line, []byte("data:")):
				v := bytes.TrimPrefix(line[5:], []byte(" "))
				if data != nil {
					data = append(data, '\n')
				}
				data = append(data, v...)
			}
		}
		if err != nil {
			if len(data) > 0 {
				fn(data)
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}
