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
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
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
}

// Server is the LocalAPI on one listener.
type Server struct {
	o      Options
	mux    *http.ServeMux
	routes map[string]bool
	srv    *http.Server
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
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, o.Identity.Conn(c))
		},
	}
	return s
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
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		conn, _ := r.Context().Value(peerKey{}).(Peer)
		p, err := s.o.Identity.Request(r, conn)
		if err == nil {
			err = s.o.Authorizer.Authorize(p, perm)
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
	if _, pattern := s.mux.Handler(r); pattern == "" {
		WriteError(w, apiError(api.CodeNotFound, fmt.Sprintf("no LocalAPI route %s %s", r.Method, r.URL.Path),
			"is the stoa CLI newer than stoad? compare: stoa version"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops serving gracefully within ctx (closing the listener,
// which removes a unix socket's file if it is still ours).
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
