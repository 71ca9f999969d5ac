package mcp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/stoa-gateway/stoa/pkg/unixsock"
)

// Tenant selection: an admin caller (the unix socket's owner, or an admin
// token) narrows its view to one tenant with this header or with ?tenant=
// on the endpoint URL (Credentials.Tenant).
const (
	HeaderTenant = "X-Stoa-Tenant"
	queryTenant  = "tenant"
)

// socketBodyCap is above the proxy's default maxBody (10 MiB), so bodies
// the proxy reads on its listener are read on the socket too and get the
// handler's 413; bigger ones get the same answer from ErrorHandler
// (possibly after a client still writing sees the connection close).
const socketBodyCap = 16 << 20

// credentials reads what the request presents. On the unix socket the
// server refuses repeated credential headers itself (the proxy does so for
// its listener before routing).
func credentials(ctx *fasthttp.RequestCtx, rh *reqHeaders) (Credentials, error) {
	c := Credentials{Authorization: rh.authorization, APIKey: rh.apiKey, Tenant: selectedTenant(ctx, rh), Time: ctx.Time()}
	if pc, ok := ctx.Conn().(*peerConn); ok {
		if rh.authorizations > 1 || rh.apiKeys > 1 {
			return c, &AuthError{Status: fasthttp.StatusBadRequest, Code: "invalid_request", TokenPresent: true,
				Description: "repeated credential header"}
		}
		p := pc.peer
		c.Peer = &p
	}
	return c, nil
}

// selectedTenant reads the tenant selection (header, else query).
func selectedTenant(ctx *fasthttp.RequestCtx, rh *reqHeaders) string {
	if v := rh.tenant; len(v) > 0 {
		return strings.TrimSpace(string(v))
	}
	if bytes.IndexByte(ctx.Request.Header.RequestURI(), '?') < 0 || len(ctx.URI().QueryString()) == 0 {
		return ""
	}
	return string(ctx.QueryArgs().Peek(queryTenant))
}

// Endpoint serves whichever Server is current, so that a reload changing
// the server's options swaps in a new Server without mounting anything
// again.
type Endpoint struct{ cur atomic.Pointer[Server] }

// NewEndpoint serves s until Swap replaces it.
func NewEndpoint(s *Server) *Endpoint {
	e := &Endpoint{}
	e.cur.Store(s)
	return e
}

// Server is the current server.
func (e *Endpoint) Server() *Server { return e.cur.Load() }

// Swap makes s current and returns the previous server.
func (e *Endpoint) Swap(s *Server) *Server { return e.cur.Swap(s) }

// Handler serves a request with the current server (see Server.Handler).
func (e *Endpoint) Handler(ctx *fasthttp.RequestCtx) { e.cur.Load().Handler(ctx) }

// ErrorHandler answers a request fasthttp could not read, as the current
// server does.
func (e *Endpoint) ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	e.cur.Load().ErrorHandler(ctx, err)
}

// SocketServer serves an Endpoint on a unix socket for local agents.
// Every connection carries its peer's kernel credentials (read once, at
// accept), which Authenticate receives as Credentials.Peer.
type SocketServer struct {
	srv *fasthttp.Server
	ln  net.Listener
	wg  sync.WaitGroup
}

// ServeSocket serves e on ln until Shutdown. Errors are logged to log.
func (e *Endpoint) ServeSocket(ln net.Listener, log *slog.Logger) *SocketServer {
	s := &SocketServer{ln: ln, srv: &fasthttp.Server{
		Handler:                      e.Handler,
		ErrorHandler:                 e.ErrorHandler,
		Name:                         "stoad-mcp",
		Logger:                       fasthttpLogger{log},
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 60 * time.Second,
		IdleTimeout:                  120 * time.Second,
		MaxRequestBodySize:           socketBodyCap,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		CloseOnShutdown:              true,
		SecureErrorLogMessage:        true,
	}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(peerListener{ln}); err != nil {
			log.Error("mcp socket stopped serving", "err", err)
		}
	}()
	return s
}

// Shutdown stops serving within ctx and closes the listener.
func (s *SocketServer) Shutdown(ctx context.Context) error {
	err := s.srv.ShutdownWithContext(ctx)
	// Shutdown closes only listeners Serve has registered; a Shutdown
	// racing the start would otherwise leave Serve blocked in Accept.
	s.ln.Close()
	s.wg.Wait()
	return err
}

// peerListener reads every accepted connection's peer credentials.
type peerListener struct{ net.Listener }

// peerConn is an accepted socket connection and who is on its other end.
type peerConn struct {
	net.Conn
	peer Peer
}

func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &peerConn{Conn: c, peer: Peer{UID: ^uint32(0)}}
	if uid, gid, pid, err := unixsock.PeerCred(c); err == nil {
		pc.peer = Peer{UID: uid, GID: gid, PID: pid}
	}
	return pc, nil
}

// fasthttpLogger sends fasthttp's messages to debug level.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}
