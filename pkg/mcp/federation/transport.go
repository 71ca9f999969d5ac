package federation

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
)

// transport is one way of exchanging JSON-RPC with an upstream.
type transport interface {
	// connect establishes a session: the handshake, and for stdio the
	// process. It replaces any previous session.
	connect(ctx context.Context) (handshake, error)
	// call sends one request and waits for its response (result or
	// *RPCError). A session the upstream forgot is re-established once,
	// transparently.
	call(ctx context.Context, r *request) (json.RawMessage, error)
	// close ends the session (and the process).
	close(ctx context.Context)
	// pid is the child's process id (stdio), else 0.
	pid() int
}

// request is one outgoing call.
type request struct {
	method string
	// inner holds the members of params without braces (e.g.
	// `"name":"x","arguments":{}`), so the 2026-07-28 _meta member can be
	// put in front without re-encoding.
	inner []byte
	// name is the Mcp-Name header value of tools/call and resources/read
	// (2026-07-28).
	name string
	// paramHeaders are Mcp-Param-* headers (2026-07-28 x-mcp-header).
	paramHeaders []header
	// trace holds the _meta members carrying the caller's trace context
	// (`"traceparent":"…"[,"tracestate":"…"]`), nil when untraced.
	trace []byte
}

type header struct{ name, value string }

// handshake is what a session learned about the upstream.
type handshake struct {
	version              string
	modern               bool
	sessionID            bool
	toolsListChanged     bool
	resourcesListChanged bool
	resources            bool
	serverName           string
}

// hooks are how a transport reports to its Upstream.
type hooks struct {
	// notify receives notifications (method only: list_changed is all the
	// federation acts on).
	notify func(method string)
	// down reports that the session broke (the process exited, the upstream
	// closed the connection); the Upstream reconnects with backoff.
	down func(err error)
	// resync reports that notifications may have been missed (a
	// notification stream was re-opened, a session re-created).
	resync func()
	// reinit counts sessions re-created after the upstream forgot one.
	reinit func()
	log    *slog.Logger
}

// initializeParams is the legacy handshake's params.
func initializeParams(version string, clientInfo []byte) []byte {
	b := []byte(`{"protocolVersion":`)
	b = strconv.AppendQuote(b, version)
	b = append(b, `,"capabilities":{},"clientInfo":`...)
	b = append(b, clientInfo...)
	return append(b, '}')
}

// initializeResult is the part of the initialize (or server/discover)
// result the federation reads.
type initializeResult struct {
	ProtocolVersion   string   `json:"protocolVersion"`
	SupportedVersions []string `json:"supportedVersions"`
	Capabilities      struct {
		Tools *struct {
			ListChanged bool `json:"listChanged"`
		} `json:"tools"`
		Resources *struct {
			ListChanged bool `json:"listChanged"`
		} `json:"resources"`
	} `json:"capabilities"`
	ServerInfo *serverInfo `json:"serverInfo"`
	// 2026-07-28 puts serverInfo in _meta.
	Meta struct {
		ServerInfo *serverInfo `json:"io.modelcontextprotocol/serverInfo"`
	} `json:"_meta"`
}

type serverInfo struct {
	Name string `json:"name"`
}

func (r *initializeResult) handshake(version string, modern bool) handshake {
	h := handshake{version: version, modern: modern}
	if t := r.Capabilities.Tools; t != nil {
		h.toolsListChanged = t.ListChanged
	}
	if rs := r.Capabilities.Resources; rs != nil {
		h.resources = true
		h.resourcesListChanged = rs.ListChanged
	}
	switch {
	case r.ServerInfo != nil:
		h.serverName = r.ServerInfo.Name
	case r.Meta.ServerInfo != nil:
		h.serverName = r.Meta.ServerInfo.Name
	}
	return h
}
