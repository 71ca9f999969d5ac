package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
	"github.com/stoa-gateway/stoa/pkg/unixsock"
)

// maxRequestBody bounds LocalAPI request bodies (an apply of 10,000 tools is
// about 10 MB).
const maxRequestBody = 512 << 20

// Peer is the process on the other end of a LocalAPI connection.
type Peer struct {
	UID, GID uint32
	PID      int32
	User     string
}

// Actor is how the peer appears in revisions and audit entries.
func (p Peer) Actor() string {
	if p.User != "" {
		return fmt.Sprintf("%s (uid %d)", p.User, p.UID)
	}
	return fmt.Sprintf("uid %d", p.UID)
}

type peerKey struct{}

// localAPI serves the LocalAPI over a unix socket.
type localAPI struct {
	d        *Daemon
	ln       net.Listener
	srv      *http.Server
	mux      *http.ServeMux
	groupGID string // numeric gid of --socket-group, if any
}

func newLocalAPI(d *Daemon) (*localAPI, error) {
	ln, err := unixsock.Listen(d.cfg.Socket, d.cfg.SocketGroup, "--socket", d.log)
	if err != nil {
		return nil, err
	}
	l := &localAPI{d: d, ln: ln, mux: http.NewServeMux(), groupGID: ln.GID}
	l.routes()
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			p := Peer{UID: ^uint32(0)}
			if uid, gid, pid, err := unixsock.PeerCred(c); err == nil {
				p = Peer{UID: uid, GID: gid, PID: pid}
				if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
					p.User = u.Username
				}
			}
			return context.WithValue(ctx, peerKey{}, p)
		},
		ErrorLog: nil,
	}
	return l, nil
}

func (l *localAPI) Name() string { return "localapi" }
func (l *localAPI) Addr() string { return l.d.cfg.Socket }
func (l *localAPI) Serve() error {
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
func (l *localAPI) Shutdown(ctx context.Context) error {
	// Closing the listener removes the socket file if it is still ours.
	return l.srv.Shutdown(ctx)
}

// HandlerFunc is a LocalAPI handler: it returns an error and one writer
// turns it into the JSON envelope (return an *api.Error to choose the code).
type HandlerFunc func(w http.ResponseWriter, r *http.Request, p Peer) error

// extension is a LocalAPI route contributed by another package.
type extension struct {
	Pattern string
	Handler HandlerFunc
}

// HandleAPI registers an extra LocalAPI route (e.g. "GET /v1/keys") served
// with the same peer check and error envelope. Call it before Run.
func (d *Daemon) HandleAPI(pattern string, h HandlerFunc) {
	d.extensions = append(d.extensions, extension{pattern, h})
}

func (l *localAPI) handle(pattern string, h HandlerFunc) {
	// ServeMux panics on a duplicate pattern, which is what we want.
	l.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(Peer)
		if err := l.authorize(p); err != nil {
			WriteError(w, err)
			return
		}
		if err := h(w, r, p); err != nil {
			WriteError(w, err)
		}
	})
}

func (l *localAPI) routes() {
	l.handle("GET "+api.PathStatus, l.serveStatus)
	l.handle("POST "+api.PathApply, l.serveApply)
	l.handle("GET "+api.PathObjects, l.serveObjects)
	l.handle("POST "+api.PathDelete, l.serveDelete)
	l.handle("GET "+api.PathRevisions, l.serveRevisions)
	l.handle("GET "+api.PathRevisions+"/{id}", l.serveRevision)
	l.handle("POST "+api.PathRollback, l.serveRollback)
	l.handle("GET "+api.PathEvents, l.serveEvents)
	l.handle("GET "+api.PathDigests, l.serveDigests)
	for _, ext := range l.d.extensions {
		l.handle(ext.Pattern, ext.Handler)
	}
}

// ServeHTTP routes, answering unknown routes and methods with the JSON
// envelope rather than ServeMux's plain text.
func (l *localAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := l.mux.Handler(r); pattern == "" {
		WriteError(w, apiError(api.CodeNotFound, fmt.Sprintf("no LocalAPI route %s %s", r.Method, r.URL.Path),
			"is the stoa CLI newer than stoad? compare: stoa version"))
		return
	}
	l.mux.ServeHTTP(w, r)
}

// authorize admits root, the daemon's own user, and members of
// --socket-group. The socket's mode already restricts who can connect; this
// is the second, independent check.
func (l *localAPI) authorize(p Peer) error {
	if unixsock.Trusted(p.UID) {
		return nil
	}
	if l.groupGID != "" {
		if strconv.Itoa(int(p.GID)) == l.groupGID {
			return nil
		}
		if u, err := user.LookupId(strconv.Itoa(int(p.UID))); err == nil {
			if gids, err := u.GroupIds(); err == nil && slices.Contains(gids, l.groupGID) {
				return nil
			}
		}
	}
	return apiError(api.CodeForbidden, fmt.Sprintf("uid %d may not use this stoad", p.UID),
		"run stoa as the daemon's user or root, or start stoad with --socket-group")
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// WriteError writes err as the JSON error envelope.
func WriteError(w http.ResponseWriter, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			ae = apiError(api.CodeBadRequest, "request body too large", "")
		case errors.Is(err, store.ErrNotFound):
			ae = apiError(api.CodeNotFound, err.Error(), "")
		default:
			ae = apiError(api.CodeInternal, err.Error(), "")
		}
	}
	status := http.StatusInternalServerError
	switch ae.Code {
	case api.CodeInvalid:
		status = http.StatusUnprocessableEntity
	case api.CodeNotFound:
		status = http.StatusNotFound
	case api.CodeConflict:
		status = http.StatusConflict
	case api.CodeUnauthorized:
		status = http.StatusUnauthorized
	case api.CodeForbidden:
		status = http.StatusForbidden
	case api.CodeBadRequest:
		status = http.StatusBadRequest
	case api.CodeUnavailable:
		status = http.StatusServiceUnavailable
	case api.CodeMethod:
		status = http.StatusMethodNotAllowed
	}
	WriteJSON(w, status, api.ErrorBody{Error: ae})
}

// DecodeBody decodes a bounded JSON request body into v.
func DecodeBody(r *http.Request, w http.ResponseWriter, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	dec := json.NewDecoder(bufio.NewReaderSize(r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apiError(api.CodeBadRequest, "decode request: "+err.Error(), "")
	}
	return nil
}

func (l *localAPI) serveStatus(w http.ResponseWriter, r *http.Request, p Peer) error {
	return WriteJSON(w, http.StatusOK, l.d.Status())
}

// stripObjects drops before/after from changes unless the caller asked.
func stripObjects(resp *api.ApplyResponse, with bool) {
	if with {
		for i, c := range resp.Changes {
			if c.Before != nil {
				resp.Changes[i].Before = spec.Mask(c.Before)
			}
			if c.After != nil {
				resp.Changes[i].After = spec.Mask(c.After)
			}
		}
		return
	}
	for i := range resp.Changes {
		resp.Changes[i].Before, resp.Changes[i].After = nil, nil
	}
}

func (l *localAPI) serveApply(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.ApplyRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	if err := l.d.gitopsGuard(req.Force, req.DryRun); err != nil {
		return err
	}
	resp, err := l.d.Apply(&req, p.Actor())
	if err != nil {
		return err
	}
	stripObjects(resp, req.WithObjects)
	return WriteJSON(w, http.StatusOK, resp)
}

func (l *localAPI) serveDelete(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.DeleteRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	if err := l.d.gitopsGuard(req.Force, req.DryRun); err != nil {
		return err
	}
	resp, err := l.d.Delete(&req, p.Actor())
	if err != nil {
		return err
	}
	stripObjects(resp, req.WithObjects)
	return WriteJSON(w, http.StatusOK, resp)
}

func (l *localAPI) serveRollback(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.RollbackRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	if err := l.d.gitopsGuard(req.Force, req.DryRun); err != nil {
		return err
	}
	resp, err := l.d.Rollback(&req, p.Actor())
	if err != nil {
		return err
	}
	stripObjects(resp, req.WithObjects)
	return WriteJSON(w, http.StatusOK, resp)
}

func (l *localAPI) serveObjects(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	st := l.d.State()
	var kind spec.Kind
	if k := q.Get("kind"); k != "" {
		var ok bool
		if kind, ok = spec.ParseKind(k); !ok {
			return apiError(api.CodeBadRequest, fmt.Sprintf("unknown kind %q", k), "kinds: "+kindList())
		}
	}
	ns, name := q.Get("namespace"), q.Get("name")
	list := api.ObjectList{Revision: st.Revision, Items: []*spec.Object{}}
	for _, o := range st.Objects {
		if kind != "" && o.Kind != kind {
			continue
		}
		if ns != "" && o.Metadata.Namespace != ns {
			continue
		}
		if name != "" && o.Metadata.Name != name {
			continue
		}
		list.Items = append(list.Items, spec.Mask(o))
	}
	if name != "" && len(list.Items) == 0 {
		what := string(kind) + " " + name
		if ns != "" {
			what = fmt.Sprintf("%s %q in tenant %s", kind, name, ns)
		}
		return apiError(api.CodeNotFound, what+" not found", "list what exists with: stoa get "+strings.ToLower(string(kind))+"s -A")
	}
	return WriteJSON(w, http.StatusOK, list)
}

func (l *localAPI) serveDigests(w http.ResponseWriter, r *http.Request, p Peer) error {
	st := l.d.State()
	out := api.DigestList{Revision: st.Revision, Items: make([]api.ObjectDigest, 0, len(st.Objects))}
	for _, o := range st.Objects {
		ref := o.Ref()
		out.Items = append(out.Items, api.ObjectDigest{Ref: ref, Digest: st.Digests[ref]})
	}
	return WriteJSON(w, http.StatusOK, out)
}

func kindList() string {
	var ks []string
	for _, k := range spec.Kinds {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}

func toAPIRevision(r store.Revision) api.Revision {
	return api.Revision{ID: r.ID, Time: r.Time, Actor: r.Actor, Action: r.Action, Summary: r.Summary, Message: r.Message, Changes: r.Changes}
}

func (l *localAPI) serveRevisions(w http.ResponseWriter, r *http.Request, p Peer) error {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	revs, err := store.ListRevisions(r.Context(), l.d.store, limit)
	if err != nil {
		return err
	}
	out := api.RevisionList{Current: l.d.State().Revision, Items: []api.Revision{}}
	for _, rv := range revs {
		out.Items = append(out.Items, toAPIRevision(rv))
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (l *localAPI) serveRevision(w http.ResponseWriter, r *http.Request, p Peer) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return apiError(api.CodeBadRequest, fmt.Sprintf("bad revision %q", r.PathValue("id")), "revisions are positive integers; see: stoa history")
	}
	rv, err := store.RevisionWithChanges(r.Context(), l.d.store, id)
	if err != nil {
		return err
	}
	out := toAPIRevision(*rv)
	for i, c := range out.Changes {
		out.Changes[i] = plan.Change{Op: c.Op, Ref: c.Ref}
		if c.Before != nil {
			out.Changes[i].Before = spec.Mask(c.Before)
		}
		if c.After != nil {
			out.Changes[i].After = spec.Mask(c.After)
		}
	}
	return WriteJSON(w, http.StatusOK, out)
}

// serveEvents streams events as NDJSON: the stored backlog (after ?since=N,
// or the last ?last=N), then, with ?follow=1, new events as they happen.
func (l *localAPI) serveEvents(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	last, _ := strconv.Atoi(q.Get("last"))
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	if since == 0 && last == 0 {
		last = 100
	}
	var (
		live   <-chan api.Event
		cancel func()
	)
	if follow {
		live, cancel = l.d.events.Subscribe()
		defer cancel()
	}
	backlog, err := store.ReadEvents(r.Context(), l.d.store, since, last)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	var seq int64
	for _, e := range backlog {
		if err := enc.Encode(e); err != nil {
			return nil
		}
		seq = e.Seq
	}
	if fl != nil {
		fl.Flush()
	}
	if !follow {
		return nil
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case e, ok := <-live:
			if !ok {
				return nil
			}
			if e.Seq != 0 && e.Seq <= seq {
				continue // already sent as backlog
			}
			if err := enc.Encode(e); err != nil {
				return nil
			}
			if fl != nil {
				fl.Flush()
			}
		case <-keepalive.C:
			// An empty line keeps idle connections (and proxies) alive;
			// NDJSON readers skip it.
			if _, err := w.Write([]byte("\n")); err != nil {
				return nil
			}
			if fl != nil {
				fl.Flush()
			}
		}
	}
}
