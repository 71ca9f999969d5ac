// Package localapi serves the LocalAPI: stoad's versioned HTTP API of
// JSON bodies and NDJSON streams, which the stoa CLI, the dashboard and
// scripts use. It owns the transport — routes registered by name, who
// the peer is and whether it may ask, one JSON error envelope — and
// reaches the daemon only through the narrow interfaces in backend.go,
// so the same handlers can be served on the unix socket (peer
// credentials) or, by a control plane, over HTTPS (bearer tokens).
package localapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/rbac"
)

// maxRequestBody bounds LocalAPI request bodies (an apply of 10,000 tools is
// about 10 MB).
const maxRequestBody = 512 << 20

// Options configure a Server.
type Options struct {
	// Daemon serves the configuration routes (required); Services the
	// others (a nil service's routes are not served).
	Daemon   Daemon
	Services Services
	// Identity names each request's peer and Authorizer decides whether
	// it may use a route; both required.
	Identity   Identity
	Authorizer Authorizer
	// TLS, when set, serves HTTPS on the listener given to Serve (a
	// control plane's API listener).
	TLS *tls.Config
}

// Server is the LocalAPI on one listener.
type Server struct {
	o      Options
	mux    *http.ServeMux
	routes map[string]bool
	srv    *http.Server
	mounts []mount
}

// mount is a handler served under a path prefix beside the routes.
type mount struct {
	prefix string
	h      http.Handler
}

// HandlerFunc is a LocalAPI handler: it returns an error and one writer
// turns it into the JSON envelope (return an *api.Error to choose the
// code). It runs only after the Authorizer admitted p.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, p Peer) error

type peerKey struct{}

// New builds the server and registers every route.
func New(o Options) *Server {
	s := &Server{o: o, mux: http.NewServeMux(), routes: map[string]bool{}}
	s.registerConfig()
	s.registerServices()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// Connections kept open between requests: long enough for a
		// CLI's next request, short enough that idle remote clients do
		// not accumulate. Streams are not idle.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, o.Identity.Conn(c))
		},
		TLSConfig: o.TLS,
	}
	return s
}

// Mount serves h under prefix ("/dev-idp/"), before the routes and
// without the Identity and Authorizer: for a handler with its own
// authentication (the development issuer). Call it before Serve.
func (s *Server) Mount(prefix string, h http.Handler) {
	s.mounts = append(s.mounts, mount{prefix, h})
}

// Permission is what a route needs of its peer.
type Permission int

// Permissions, from the least.
const (
	// PermRead: the route only reads (status, objects, history, lists).
	PermRead Permission = iota
	// PermWrite: the route changes something (apply, keys, blocks, …).
	PermWrite
)

func (p Permission) String() string {
	if p == PermWrite {
		return "write"
	}
	return "read"
}

// handle registers h under pattern ("GET /v1/status"). A pattern is
// registered once: a second registration is a programming error and
// panics. The peer's permission is checked first, before h reads
// anything of the request.
func (s *Server) handle(pattern string, perm Permission, h HandlerFunc) {
	if s.routes[pattern] {
		panic("localapi: route " + pattern + " registered twice")
	}
	s.routes[pattern] = true
	route := Route{Pattern: pattern, Perm: perm, RBAC: rbac.RouteFor(pattern)}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		conn, _ := r.Context().Value(peerKey{}).(Peer)
		p, err := s.o.Identity.Request(r, conn)
		if err == nil {
			p, err = s.o.Authorizer.Authorize(r, p, route)
		}
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			WriteError(w, err)
		}
	})
}

// ServeHTTP routes, answering unknown routes and methods with the JSON
// envelope rather than ServeMux's plain text.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, m := range s.mounts {
		if strings.HasPrefix(r.URL.Path, m.prefix) {
			m.h.ServeHTTP(w, r)
			return
		}
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		WriteError(w, apiError(api.CodeNotFound, fmt.Sprintf("no LocalAPI route %s %s", r.Method, r.URL.Path),
			"is the stoa CLI newer than stoad? compare: stoa version"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.o.TLS != nil {
		ln = tls.NewListener(ln, s.o.TLS)
	}
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops serving gracefully within ctx (closing the listener,
// which removes a unix socket's file if it is still ours).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
