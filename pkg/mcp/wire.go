package mcp

import (
	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
)

// Protocol versions. Modern versions carry per-request _meta; legacy ones
// use the initialize handshake.
const (
	versionModern = "2026-07-28"
	versionLatest = "2025-11-25" // newest legacy version, answered to initialize
	versionBatch  = "2025-03-26" // the only revision with JSON-RPC batches
)

var (
	modernVersions = []string{versionModern}
	legacyVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26"}
	// supportedVersions is what server/discover and -32022 errors list,
	// newest first.
	supportedVersions = append(append([]string{}, modernVersions...), legacyVersions...)
)

func isModernVersion(v []byte) bool {
	for _, m := range modernVersions {
		if string(v) == m {
			return true
		}
	}
	return false
}

func isLegacyVersion(v []byte) bool {
	for _, m := range legacyVersions {
		if string(v) == m {
			return true
		}
	}
	return false
}

// era of one request.
type era uint8

const (
	eraLegacy era = iota
	eraModern
)

// beginResult appends {"jsonrpc":"2.0","id":ID,"result":{ .
func beginResult(b, id []byte) []byte {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	return append(b, `,"result":{`...)
}

// endResult closes a result opened with beginResult. Modern results get
// resultType and the server's identity in _meta (SEP-2575, SEP-2322).
// members reports whether the result already has members.
func (s *Server) endResult(b []byte, e era, members bool) []byte {
	if e == eraModern {
		if members {
			b = append(b, ',')
		}
		b = append(b, `"resultType":"complete","_meta":`...)
		b = append(b, s.metaServerInfo...)
	}
	return append(b, "}}"...)
}

// appendCacheable adds the CacheableResult members of modern list and read
// results (SEP-2549). Every list here depends on the caller, so it is
// private.
func (s *Server) appendCacheable(b []byte, e era, scope string) []byte {
	if e != eraModern {
		return b
	}
	b = append(b, `,"ttlMs":`...)
	b = rpc.AppendInt(b, s.ttlMs)
	b = append(b, `,"cacheScope":"`...)
	b = append(b, scope...)
	return append(b, '"')
}

// rpcError is a JSON-RPC error with its HTTP status.
type rpcError struct {
	status  int
	code    int
	message string
	data    []byte // raw JSON, optional
}

// appendError appends a JSON-RPC error response. id may be nil (null).
func appendError(b, id []byte, e *rpcError) []byte {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if id == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, id...)
	}
	b = append(b, `,"error":{"code":`...)
	b = rpc.AppendInt(b, int64(e.code))
	b = append(b, `,"message":`...)
	b = rpc.AppendString(b, e.message)
	if e.data != nil {
		b = append(b, `,"data":`...)
		b = append(b, e.data...)
	}
	return append(b, "}}"...)
}

// appendTextResult appends the members of a CallToolResult with one text
// block.
func appendTextResult(b []byte, text string, isError bool) []byte {
	b = append(b, `"content":[{"type":"text","text":`...)
	b = rpc.AppendString(b, text)
	b = append(b, "}]"...)
	if isError {
		b = append(b, `,"isError":true`...)
	}
	return b
}

// appendStructuredResult appends the members of a CallToolResult carrying
// the JSON value js both as structuredContent and, for clients that only
// read content, as serialized text (as the spec recommends).
func appendStructuredResult(b, js []byte, isError, structured bool) []byte {
	b = append(b, `"content":[{"type":"text","text":`...)
	b = rpc.AppendString(b, js)
	b = append(b, "}]"...)
	if structured {
		b = append(b, `,"structuredContent":`...)
		b = append(b, js...)
	}
	if isError {
		b = append(b, `,"isError":true`...)
	}
	return b
}
