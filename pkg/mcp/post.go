package mcp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// maxBatch bounds the messages of one JSON-RPC batch (2025-03-26 only).
const maxBatch = 100

// servePost handles a JSON-RPC message, or a batch of them, POSTed to the
// endpoint.
func (s *Server) servePost(ctx *fasthttp.RequestCtx, rh *reqHeaders) {
	caller, ok := s.authenticate(ctx, rh)
	if !ok {
		return
	}
	if !isJSON(ctx.Request.Header.ContentType()) {
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusUnsupportedMediaType, code: rpc.CodeInvalidRequest,
			message: "Unsupported Media Type: POST a JSON-RPC message with Content-Type: application/json"})
		return
	}
	body := ctx.PostBody()
	if len(body) > s.opts.MaxBodyBytes {
		s.writeHTTPError(ctx, nil, errTooLarge())
		return
	}
	st := s.states.Get().(*reqState)
	defer s.putState(st)
	st.rh = *rh
	if i := rpc.SkipSpace(body, 0); i < len(body) && body[i] == '[' && rpc.Valid(body) {
		s.serveBatch(ctx, caller, st, body)
		return
	}
	b, status, streamed := s.handleMessage(ctx, caller, st, st.out[:0], body, false)
	if streamed {
		return
	}
	ctx.SetStatusCode(status)
	if len(b) == 0 {
		return // 202: a notification or a client's response
	}
	ctx.SetContentType("application/json")
	// Hand the buffer to the response and keep its old one: no copy.
	st.out = ctx.Response.SwapBody(b)[:0]
}

func errTooLarge() *rpcError {
	return &rpcError{status: fasthttp.StatusRequestEntityTooLarge, code: rpc.CodeInvalidRequest, message: "Request body too large"}
}

// serveBatch answers a JSON-RPC batch. Batches exist in exactly one MCP
// revision, 2025-03-26 ("MAY support sending JSON-RPC batches", and
// servers "MUST support receiving" them); 2025-06-18 removed them. Without
// sessions, the revision is the one MCP-Protocol-Version names, absent
// meaning 2025-03-26 (whose clients do not send the header).
func (s *Server) serveBatch(ctx *fasthttp.RequestCtx, caller Caller, st *reqState, body []byte) {
	if v := st.rh.version; len(v) > 0 && string(v) != versionBatch {
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidRequest,
			message: "Invalid Request: JSON-RPC batches exist only in protocol version " + versionBatch +
				" (removed in 2025-06-18); send one message per request"})
		return
	}
	elems := rpc.ArrayElements(body, nil)
	switch {
	case len(elems) == 0:
		// JSON-RPC 2.0: an empty array is one Invalid Request.
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidRequest,
			message: "Invalid Request: empty batch"})
		return
	case len(elems) > maxBatch:
		s.writeHTTPError(ctx, nil, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidRequest,
			message: "Invalid Request: a batch holds at most " + strconv.Itoa(maxBatch) + " messages"})
		return
	}
	out := append(make([]byte, 0, 512), '[')
	n := 0
	for _, e := range elems {
		mark := len(out)
		if n > 0 {
			out = append(out, ',')
		}
		before := len(out)
		out, _, _ = s.handleMessage(ctx, caller, st, out, e, true)
		if len(out) == before {
			out = out[:mark] // nothing to answer for this one
			continue
		}
		n++
	}
	if n == 0 {
		ctx.SetStatusCode(fasthttp.StatusAccepted) // notifications and responses only
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(out, ']'))
}

// handleMessage answers one JSON-RPC message, appending its response to b.
// It returns b unchanged (and 202) for notifications and client responses,
// the HTTP status the message would get on its own, and streamed when it
// took over the connection (subscriptions/listen; never in a batch).
func (s *Server) handleMessage(ctx *fasthttp.RequestCtx, caller Caller, st *reqState, b, msg []byte, inBatch bool) (_ []byte, status int, streamed bool) {
	fail := func(id []byte, e *rpcError) ([]byte, int, bool) {
		status := e.status
		if status == 0 {
			status = fasthttp.StatusOK
		}
		return appendError(b, id, e), status, false
	}
	if inBatch {
		if i := rpc.SkipSpace(msg, 0); i < len(msg) && msg[i] == '[' {
			return fail(nil, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidRequest,
				message: "Invalid Request: a batch element must be a JSON-RPC message object"})
		}
	}
	if e := rpc.DecodeRequest(msg, &st.req); e != nil {
		return fail(st.req.ID, &rpcError{status: fasthttp.StatusBadRequest, code: e.Code, message: e.Message})
	}
	switch st.req.Kind {
	case rpc.KindResponse:
		// Legacy clients may answer server requests; this server sends none,
		// so accept and drop. Modern clients MUST NOT send responses.
		if isModernVersion(st.rh.version) {
			return fail(nil, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidRequest,
				message: "Invalid Request: clients must not send JSON-RPC responses"})
		}
		return b, fasthttp.StatusAccepted, false
	case rpc.KindNotification:
		// notifications/initialized, notifications/cancelled (requests here
		// complete synchronously, so there is nothing to cancel), ...
		return b, fasthttp.StatusAccepted, false
	}
	id := st.req.ID
	if e := rpc.DecodeParams(st.req.Params, &st.par); e != nil {
		return fail(id, &rpcError{status: fasthttp.StatusBadRequest, code: e.Code, message: e.Message})
	}
	if tr := s.opts.Tracer; tr.Enabled() {
		return s.handleTraced(ctx, tr, caller, st, b, inBatch)
	}
	return s.handleRequest(ctx, caller, st, b, inBatch)
}

// handleRequest answers a JSON-RPC request whose params are decoded.
func (s *Server) handleRequest(ctx *fasthttp.RequestCtx, caller Caller, st *reqState, b []byte, inBatch bool) (_ []byte, status int, streamed bool) {
	st.rerr = nil
	fail := func(id []byte, e *rpcError) ([]byte, int, bool) {
		st.rerr = e
		status := e.status
		if status == 0 {
			status = fasthttp.StatusOK
		}
		return appendError(b, id, e), status, false
	}
	id := st.req.ID
	method := st.req.Method
	if string(method) == "initialize" && !(st.par.HasMetaVersion && !isLegacyVersion(st.par.MetaVersion)) {
		if inBatch {
			// 2025-03-26 lifecycle: "The initialization request MUST NOT be
			// part of a JSON-RPC batch".
			return fail(id, &rpcError{code: rpc.CodeInvalidRequest, message: "Invalid Request: initialize must not be part of a batch"})
		}
		// initialize selects the legacy era, unless it carries modern _meta:
		// then it is a 2026-07-28 request for a method that revision
		// removed, checked and answered like any unknown method (404).
		if rerr := s.initialize(st, id); rerr != nil {
			return fail(id, rerr)
		}
		return append(b, st.init...), fasthttp.StatusOK, false
	}
	e, rerr := s.requestEra(ctx, st)
	if rerr != nil {
		return fail(id, rerr)
	}
	cat := s.cat.Load()
	switch string(method) {
	case "tools/list":
		b, rerr = s.listTools(b, cat, caller, st, e)
	case "tools/call":
		b, rerr = s.callTool(ctx, b, cat, caller, st, e)
	case "resources/list":
		b, rerr = s.listResources(b, cat, caller, st, e)
	case "resources/read":
		b, rerr = s.readResource(ctx, b, cat, caller, st, e)
	case "resources/templates/list":
		b = beginResult(b, id)
		b = append(b, `"resourceTemplates":[]`...)
		b = s.appendCacheable(b, e, "public")
		b = s.endResult(b, e, true)
	case "prompts/list":
		// No prompts; an empty list, as the official SDK servers answer.
		b = beginResult(b, id)
		b = append(b, `"prompts":[]`...)
		b = s.appendCacheable(b, e, "public")
		b = s.endResult(b, e, true)
	case "prompts/get":
		if st.par.Name == nil {
			rerr = &rpcError{code: rpc.CodeInvalidParams, message: `Invalid params: prompts/get requires "name"`}
			break
		}
		rerr = &rpcError{code: rpc.CodeInvalidParams, message: "Unknown prompt: " + truncateUTF8(st.par.Name, 128)}
	case "ping":
		if e == eraModern {
			rerr = methodNotFound(e, method) // removed in 2026-07-28
			break
		}
		b = s.endResult(beginResult(b, id), e, false)
	case "server/discover":
		if e != eraModern {
			rerr = missingMeta(method)
			break
		}
		b = s.appendDiscover(beginResult(b, id))
		b = s.endResult(b, e, true)
	case "subscriptions/listen":
		if e != eraModern {
			rerr = missingMeta(method)
			break
		}
		s.listen(ctx, caller, st)
		return b, 0, true
	default:
		rerr = methodNotFound(e, method)
	}
	if rerr != nil {
		return fail(id, rerr)
	}
	return b, fasthttp.StatusOK, false
}

// putState returns st to the pool, dropping buffers a large answer grew so
// one big response does not pin memory.
func (s *Server) putState(st *reqState) {
	const maxKeep = 256 << 10
	if cap(st.out) > maxKeep {
		st.out = make([]byte, 0, 4096)
	}
	st.ci, st.hh, st.rh = CallInfo{}, HTTPHeaders{}, reqHeaders{} // nothing of the request kept alive
	if cap(st.up.Body) > maxKeep || cap(st.up.Query) > maxKeep || cap(st.up.Path) > maxKeep {
		st.up = UpstreamRequest{}
	}
	s.states.Put(st)
}

func isJSON(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	return bytes.EqualFold(ct, []byte("application/json"))
}

func methodNotFound(e era, method []byte) *rpcError {
	status := fasthttp.StatusOK
	if e == eraModern {
		status = fasthttp.StatusNotFound // 2026-07-28 Streamable HTTP
	}
	return &rpcError{status: status, code: rpc.CodeMethodNotFound, message: "Method not found: " + string(method)}
}

func missingMeta(method []byte) *rpcError {
	return &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidParams,
		message: "Invalid params: " + string(method) + ` requires _meta["` + rpc.MetaProtocolVersion + `"] and _meta["` + rpc.MetaClientCapabilities + `"]`}
}

// requestEra decides which protocol revision a request follows and checks
// the 2026-07-28 transport rules: the MCP-Protocol-Version, Mcp-Method and
// Mcp-Name headers must be present and match the body (-32020), the version
// must be served (-32022), and the required _meta fields present (-32602).
func (s *Server) requestEra(ctx *fasthttp.RequestCtx, st *reqState) (era, *rpcError) {
	p := &st.par
	hv := st.rh.version
	if p.HasMetaVersion && !isLegacyVersion(p.MetaVersion) {
		if len(hv) == 0 {
			return eraModern, headerMismatch("missing MCP-Protocol-Version header")
		}
		if !bytes.Equal(hv, p.MetaVersion) {
			return eraModern, headerMismatch("MCP-Protocol-Version header value '" + string(hv) +
				"' does not match body value '" + string(p.MetaVersion) + "'")
		}
		if !isModernVersion(p.MetaVersion) {
			return eraModern, unsupportedVersion(p.MetaVersion)
		}
		if !p.HasMetaCapabilities {
			return eraModern, &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeInvalidParams,
				message: `Invalid params: missing _meta["` + rpc.MetaClientCapabilities + `"]`}
		}
		hm := st.rh.method
		if len(hm) == 0 {
			return eraModern, headerMismatch("missing Mcp-Method header")
		}
		if !bytes.Equal(hm, st.req.Method) {
			return eraModern, headerMismatch("Mcp-Method header value '" + string(hm) +
				"' does not match body value '" + string(st.req.Method) + "'")
		}
		var bodyName []byte
		switch string(st.req.Method) {
		case "tools/call", "prompts/get":
			bodyName = p.Name
		case "resources/read":
			bodyName = p.URI
		default:
			return eraModern, nil
		}
		hn, ok := decodeHeaderValue(st.rh.name)
		if !ok {
			return eraModern, headerMismatch("Mcp-Name header has invalid Base64 encoding")
		}
		if len(hn) == 0 {
			return eraModern, headerMismatch("missing Mcp-Name header")
		}
		if !bytes.Equal(hn, bodyName) {
			return eraModern, headerMismatch("Mcp-Name header value '" + string(hn) +
				"' does not match body value '" + string(bodyName) + "'")
		}
		return eraModern, nil
	}
	if len(hv) > 0 && !isLegacyVersion(hv) {
		if isModernVersion(hv) {
			return eraModern, missingMeta(st.req.Method)
		}
		// 2025-11-25: an invalid or unsupported MCP-Protocol-Version is a 400.
		return eraLegacy, unsupportedVersion(hv)
	}
	return eraLegacy, nil
}

func headerMismatch(msg string) *rpcError {
	return &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeHeaderMismatch, message: "Header mismatch: " + msg}
}

func unsupportedVersion(requested []byte) *rpcError {
	data, _ := json.Marshal(map[string]any{"supported": supportedVersions, "requested": string(requested)})
	return &rpcError{status: fasthttp.StatusBadRequest, code: rpc.CodeUnsupportedProtocolVersion,
		message: "Unsupported protocol version", data: data}
}

// decodeHeaderValue undoes the "=?base64?...?=" sentinel encoding of
// Mcp-Name and Mcp-Param-* values.
func decodeHeaderValue(v []byte) ([]byte, bool) {
	const pre, suf = "=?base64?", "?="
	if len(v) < len(pre)+len(suf) || !bytes.HasPrefix(v, []byte(pre)) || !bytes.HasSuffix(v, []byte(suf)) {
		return v, true
	}
	out, err := base64.StdEncoding.AppendDecode(nil, v[len(pre):len(v)-len(suf)])
	return out, err == nil
}

// initialize answers the legacy handshake into st.init. Sessions are not
// issued: every request is authenticated and served on its own, and the
// negotiated version travels in MCP-Protocol-Version (2025-06-18 and
// later).
func (s *Server) initialize(st *reqState, id []byte) *rpcError {
	if st.par.ProtocolVersion == nil {
		return &rpcError{status: fasthttp.StatusOK, code: rpc.CodeInvalidParams,
			message: `Invalid params: initialize requires "protocolVersion"`}
	}
	version := versionLatest
	if isLegacyVersion(st.par.ProtocolVersion) {
		version = string(st.par.ProtocolVersion)
	}
	b := beginResult(st.init[:0], id)
	b = append(b, `"protocolVersion":"`...)
	b = append(b, version...)
	b = append(b, `","capabilities":`...)
	b = append(b, s.capabilities...)
	b = append(b, `,"serverInfo":`...)
	b = append(b, s.serverInfo...)
	if s.opts.Instructions != "" {
		b = append(b, `,"instructions":`...)
		b = rpc.AppendString(b, s.opts.Instructions)
	}
	st.init = append(b, "}}"...)
	return nil
}

func (s *Server) appendDiscover(b []byte) []byte {
	b = append(b, `"supportedVersions":`...)
	vs, _ := json.Marshal(supportedVersions)
	b = append(b, vs...)
	b = append(b, `,"capabilities":`...)
	b = append(b, s.capabilities...)
	if s.opts.Instructions != "" {
		b = append(b, `,"instructions":`...)
		b = rpc.AppendString(b, s.opts.Instructions)
	}
	// The answer is the same for every caller.
	return s.appendCacheable(b, eraModern, "public")
}

func (s *Server) listTools(b []byte, cat *Catalog, caller Caller, st *reqState, e era) ([]byte, *rpcError) {
	v := cat.viewFor(caller).lists()
	return s.listPage(b, caller, st, e, "tools", listTools, &v.toolList)
}

func (s *Server) listResources(b []byte, cat *Catalog, caller Caller, st *reqState, e era) ([]byte, *rpcError) {
	v := cat.viewFor(caller).lists()
	return s.listPage(b, caller, st, e, "resources", listResources, &v.resList)
}

func (s *Server) listPage(b []byte, caller Caller, st *reqState, e era, member string, kind byte, l *encodedList) ([]byte, *rpcError) {
	aud := audience(caller)
	from := 0
	if st.par.HasCursor {
		var err error
		if from, err = s.cursors.decode(st.par.Cursor, aud, kind, l.digest, l.len()); err != nil {
			return b, &rpcError{code: rpc.CodeInvalidParams, message: "Invalid params: " + err.Error()}
		}
	}
	to := min(from+s.opts.PageSize, l.len())
	b = beginResult(b, st.req.ID)
	b = append(b, '"')
	b = append(b, member...)
	b = append(b, `":[`...)
	b = append(b, l.page(from, to)...)
	b = append(b, ']')
	if to < l.len() {
		b = append(b, `,"nextCursor":`...)
		b = s.cursors.appendCursor(b, aud, kind, to, l.digest)
	}
	b = s.appendCacheable(b, e, "private")
	return s.endResult(b, e, true), nil
}

func (s *Server) readResource(ctx *fasthttp.RequestCtx, b []byte, cat *Catalog, caller Caller, st *reqState, e era) ([]byte, *rpcError) {
	notFound := func() ([]byte, *rpcError) {
		// Identical for missing and foreign resources.
		code := rpc.CodeResourceNotFound
		if e == eraModern {
			code = rpc.CodeInvalidParams
		}
		data := rpc.AppendString([]byte(`{"uri":`), st.par.URI)
		return b, &rpcError{code: code, message: "Resource not found", data: append(data, '}')}
	}
	r, ok := cat.resources[string(st.par.URI)]
	if ok && !caller.Admin && caller.Grants != nil && r.tenant == caller.Tenant {
		ok = slices.Contains(cat.viewFor(caller).resources, r)
	}
	if ok && !caller.Admin && r.tenant != caller.Tenant {
		return notFound()
	}
	if !ok || r.federated {
		// An upstream's resource: listed, or under a federated Tool's
		// prefix (resource templates), read from the upstream.
		ref, fed := cat.federatedResource(caller, string(st.par.URI))
		if !fed || s.fed == nil {
			return notFound()
		}
		raw, err := s.fed.ReadUpstreamResource(ctx, caller, ref, string(st.par.URI))
		if errors.Is(err, federation.ErrUnknownResource) {
			return notFound()
		}
		if err != nil {
			return b, &rpcError{code: rpc.CodeInternalError, message: "Upstream request failed: " + truncateUTF8(err.Error(), maxErrorExcerpt)}
		}
		contents, ok := member(raw, "contents")
		if !ok || contents[0] != '[' {
			return b, &rpcError{code: rpc.CodeInternalError, message: "Upstream request failed: upstream " + ref.Namespace + "/" + ref.Name + " sent an invalid resource"}
		}
		b = beginResult(b, st.req.ID)
		b = append(b, `"contents":`...)
		b = append(b, contents...)
		b = s.appendCacheable(b, e, "private")
		return s.endResult(b, e, true), nil
	}
	b = beginResult(b, st.req.ID)
	b = append(b, `"contents":[`...)
	b = r.appendContents(b)
	b = append(b, ']')
	b = s.appendCacheable(b, e, "private")
	return s.endResult(b, e, true), nil
}
