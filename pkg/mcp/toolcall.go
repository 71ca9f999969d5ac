package mcp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/mcp/federation"
	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// maxErrorExcerpt bounds the upstream error body quoted to the model.
const maxErrorExcerpt = 500

// unknownTool is the one answer for a tool that does not exist and for a
// tool of another tenant: byte-for-byte the same, so names cannot be probed.
func unknownTool(name []byte) *rpcError {
	return &rpcError{code: rpc.CodeInvalidParams, message: "Unknown tool: " + truncateUTF8(name, 128)}
}

func (s *Server) callTool(ctx *fasthttp.RequestCtx, b []byte, cat *Catalog, caller Caller, st *reqState, e era) ([]byte, *rpcError) {
	name := st.par.Name
	if name == nil {
		return b, &rpcError{code: rpc.CodeInvalidParams, message: `Invalid params: tools/call requires "name"`}
	}
	var t *Tool
	if bytes.HasPrefix(name, []byte(platformPrefix)) {
		t = platformByName(string(name))
	} else if cand, ok := cat.tools[string(name)]; ok && (caller.Admin || cand.Tenant == caller.Tenant) {
		t = cand
	}
	if t == nil {
		return b, unknownTool(name)
	}
	args := st.par.Arguments
	if args != nil && args[0] != '{' && string(args) != "null" {
		return b, &rpcError{code: rpc.CodeInvalidParams, message: "Invalid params: arguments must be an object"}
	}
	if msg := t.schema.validate(args); msg != "" {
		return b, &rpcError{code: rpc.CodeInvalidParams, message: "Invalid params: invalid arguments for " + t.Name + ": " + msg}
	}
	if t.platform != notPlatform {
		b = beginResult(b, st.req.ID)
		b = s.callPlatform(b, cat, caller, t, args)
		return s.endResult(b, e, true), nil
	}
	if e == eraModern {
		if herr := checkParamHeaders(ctx, t, args); herr != nil {
			return b, herr
		}
	}
	if t.UpstreamName != "" {
		if az, ok := s.authorizer(t); ok {
			if err := az.Authorize(ctx, caller, t, st.callInfo(ctx, args, nil)); err != nil {
				return s.refused(b, st, err, e), nil
			}
		}
		return s.callFederated(ctx, b, caller, t, st, args, e)
	}
	if err := t.plan.Map(args, &st.up); err != nil {
		return b, &rpcError{code: rpc.CodeInvalidParams, message: "Invalid params: " + err.Error()}
	}
	if az, ok := s.authorizer(t); ok {
		if err := az.Authorize(ctx, caller, t, st.callInfo(ctx, args, &st.up)); err != nil {
			return s.refused(b, st, err, e), nil
		}
	}
	resp, err := s.backend.Call(ctx, caller, t, &st.up)
	if errors.Is(err, ErrUnknownTool) {
		return b, unknownTool(name)
	}
	b = beginResult(b, st.req.ID)
	if err != nil {
		b = appendTextResult(b, "Upstream request failed: "+truncateUTF8(err.Error(), maxErrorExcerpt), true)
	} else {
		b = s.appendUpstreamResult(b, t, &resp, e)
	}
	if resp.Release != nil {
		resp.Release()
	}
	return s.endResult(b, e, true), nil
}

// authorizer returns the backend's Authorizer when it may refuse calls of t.
func (s *Server) authorizer(t *Tool) (Authorizer, bool) {
	az, ok := s.backend.(Authorizer)
	if ok {
		if f, has := az.(AuthorizerFor); has && !f.Authorizes(t) {
			return nil, false
		}
	}
	return az, ok
}

// refused answers a call the Authorizer refused: an isError result with
// its reason (the tool exists for this caller; the policy said no).
func (s *Server) refused(b []byte, st *reqState, err error, e era) []byte {
	b = beginResult(b, st.req.ID)
	b = appendTextResult(b, truncateUTF8(err.Error(), maxErrorExcerpt), true)
	return s.endResult(b, e, true)
}

// appendUpstreamResult turns an upstream answer into CallToolResult members:
//
//   - 2xx JSON object: structuredContent plus the same JSON as text;
//   - 2xx JSON array or scalar: structuredContent too for 2026-07-28 (any
//     JSON value is allowed there), text only for legacy versions, whose
//     schema requires structuredContent to be an object;
//   - 2xx image/* or audio/*: an image or audio block (base64);
//   - 2xx other text, or any valid UTF-8: a text block;
//   - 2xx other binary: an embedded resource with a base64 blob;
//   - empty 2xx: a short text naming the status;
//   - 3xx/4xx/5xx: isError with the status and an excerpt of the body.
func (s *Server) appendUpstreamResult(b []byte, t *Tool, resp *UpstreamResponse, e era) []byte {
	status := resp.Status
	body := bytes.TrimSpace(resp.Body)
	if status < 200 || status > 299 {
		msg := "Upstream returned HTTP " + strconv.Itoa(status)
		if text := fasthttp.StatusMessage(status); text != "Unknown Status Code" {
			msg += " " + text
		}
		if status >= 300 && status < 400 {
			msg += " (redirects are not followed)"
		}
		if len(body) > 0 {
			msg += ": " + truncateUTF8(body, maxErrorExcerpt)
		}
		return appendTextResult(b, msg, true)
	}
	if len(body) == 0 {
		return appendTextResult(b, "OK: upstream returned HTTP "+strconv.Itoa(status)+" with an empty body", false)
	}
	media := mediaType(resp.ContentType)
	tooBig := len(body) > s.opts.MaxResultBytes || resp.Truncated
	if !tooBig && (isJSONMedia(media) || media == "") && (body[0] == '{' || body[0] == '[' || isJSONMedia(media)) && rpc.Valid(body) {
		structured := body[0] == '{' || e == eraModern
		return appendStructuredResult(b, body, false, structured)
	}
	switch {
	case strings.HasPrefix(media, "image/") && !tooBig:
		return appendMedia(b, "image", media, body)
	case strings.HasPrefix(media, "audio/") && !tooBig:
		return appendMedia(b, "audio", media, body)
	}
	if isTextMedia(media) || validUTF8(body) {
		if tooBig {
			cut := truncateUTF8(body, s.opts.MaxResultBytes)
			return appendTextResult(b, cut+"\n[truncated: the upstream sent "+sentBytes(resp)+"]", false)
		}
		b = append(b, `"content":[{"type":"text","text":`...)
		b = rpc.AppendString(b, body)
		return append(b, "}]"...)
	}
	if tooBig {
		return appendTextResult(b, "The upstream sent "+sentBytes(resp)+" of "+media+
			", more than this gateway returns to agents.", true)
	}
	b = append(b, `"content":[{"type":"resource","resource":{"uri":`...)
	b = rpc.AppendString(b, ResourceURI(t.Tenant, t.Ref.Name)+"/result")
	b = append(b, `,"mimeType":`...)
	b = rpc.AppendString(b, media)
	b = append(b, `,"blob":"`...)
	b = base64.StdEncoding.AppendEncode(b, body)
	return append(b, `"}}]`...)
}

// sentBytes says how much the upstream sent: its exact length when the body
// was read whole or the length was declared, "more than N bytes" when the
// read stopped at the backend's cap without a declared length.
func sentBytes(resp *UpstreamResponse) string {
	switch {
	case !resp.Truncated:
		return strconv.Itoa(len(resp.Body)) + " bytes"
	case resp.Size > 0:
		return strconv.FormatInt(resp.Size, 10) + " bytes"
	default:
		return "more than " + strconv.Itoa(len(resp.Body)-1) + " bytes"
	}
}

func appendMedia(b []byte, kind, media string, body []byte) []byte {
	b = append(b, `"content":[{"type":"`...)
	b = append(b, kind...)
	b = append(b, `","mimeType":`...)
	b = rpc.AppendString(b, media)
	b = append(b, `,"data":"`...)
	b = base64.StdEncoding.AppendEncode(b, body)
	return append(b, `"}]`...)
}

// mediaType returns the lower-cased media type of a Content-Type value.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(ct)
		}
	}
	return ct
}

func isJSONMedia(m string) bool {
	return m == "application/json" || strings.HasSuffix(m, "+json")
}

func isTextMedia(m string) bool {
	return strings.HasPrefix(m, "text/") || strings.HasSuffix(m, "+xml") ||
		m == "application/xml" || m == "application/yaml" || m == "application/javascript"
}

// validUTF8 reports whether b is text: valid UTF-8 without NUL bytes.
func validUTF8(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

// callFederated calls a federated MCP server's tool. Its result is the
// upstream's, verbatim; gateway refusals and upstream failures are isError
// results (so the model reads them), an unknown tool is the same JSON-RPC
// error as a tool that does not exist, and the upstream's own -32602 is
// passed on as invalid params.
func (s *Server) callFederated(ctx *fasthttp.RequestCtx, b []byte, caller Caller, t *Tool, st *reqState, args []byte, e era) ([]byte, *rpcError) {
	if s.fed == nil {
		return b, unknownTool(st.par.Name)
	}
	raw, err := s.fed.CallUpstream(ctx, caller, t, args)
	var rpcErr *federation.RPCError
	switch {
	case errors.Is(err, ErrUnknownTool) || errors.Is(err, federation.ErrUnknownTool):
		return b, unknownTool(st.par.Name)
	case errors.As(err, &rpcErr) && rpcErr.Code == rpc.CodeInvalidParams:
		return b, &rpcError{code: rpc.CodeInvalidParams, message: "Invalid params: " + truncateUTF8(rpcErr.Message, maxErrorExcerpt)}
	case err == nil && !isObject(raw):
		err = errors.New("upstream " + t.Ref.Namespace + "/" + t.Ref.Name + " sent a result that is not a JSON object")
	}
	if err != nil {
		b = beginResult(b, st.req.ID)
		b = appendTextResult(b, "Upstream request failed: "+truncateUTF8(err.Error(), maxErrorExcerpt), true)
		return s.endResult(b, e, true), nil
	}
	return appendFederatedResult(b, st.req.ID, raw, e), nil
}
