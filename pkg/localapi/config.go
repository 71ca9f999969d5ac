package localapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// The configuration routes: status, the live objects, changes, history
// and events.

func (s *Server) registerConfig() {
	c := configAPI{s.o.Daemon}
	s.handle("GET "+api.PathStatus, PermRead, c.status)
	s.handle("POST "+api.PathApply, PermWrite, c.apply)
	s.handle("GET "+api.PathObjects, PermRead, c.objects)
	s.handle("POST "+api.PathDelete, PermWrite, c.delete)
	s.handle("GET "+api.PathRevisions, PermRead, c.revisions)
	s.handle("GET "+api.PathRevisions+"/{id}", PermRead, c.revision)
	s.handle("POST "+api.PathRollback, PermWrite, c.rollback)
	s.handle("GET "+api.PathEvents, PermRead, c.events)
	s.handle("GET "+api.PathDigests, PermRead, c.digests)
}

type configAPI struct{ d Daemon }

func (c configAPI) status(w http.ResponseWriter, r *http.Request, p Peer) error {
	return WriteJSON(w, http.StatusOK, c.d.Status())
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

func (c configAPI) apply(w http.ResponseWriter, r *http.Request, p Peer) error {
	req, err := decodeApply(r, w)
	if err != nil {
		return err
	}
	resp, err := c.d.Apply(req, p.Actor)
	if err != nil {
		return err
	}
	stripObjects(resp, req.WithObjects)
	return WriteJSON(w, http.StatusOK, resp)
}

func (c configAPI) delete(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.DeleteRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	resp, err := c.d.Delete(&req, p.Actor)
	if err != nil {
		return err
	}
	stripObjects(resp, req.WithObjects)
	return WriteJSON(w, http.StatusOK, resp)
}

func (c configAPI) rollback(w http.ResponseWriter, r *http.Request, p Peer) error {
	var req api.RollbackRequest
	if err := DecodeBody(r, w, &req); err != nil {
		return err
	}
	resp, err := c.d.Rollback(&req, p.Actor)
	if err != nil {
		return err
	}
	stripObjects(resp, req.WithObjects)
	return WriteJSON(w, http.StatusOK, resp)
}

func (c configAPI) objects(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	st := c.d.Live()
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

func (c configAPI) digests(w http.ResponseWriter, r *http.Request, p Peer) error {
	st := c.d.Live()
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

func (c configAPI) revisions(w http.ResponseWriter, r *http.Request, p Peer) error {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	revs, err := c.d.Revisions(r.Context(), limit)
	if err != nil {
		return err
	}
	out := api.RevisionList{Current: c.d.Live().Revision, Items: []api.Revision{}}
	for _, rv := range revs {
		out.Items = append(out.Items, toAPIRevision(rv))
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (c configAPI) revision(w http.ResponseWriter, r *http.Request, p Peer) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return apiError(api.CodeBadRequest, fmt.Sprintf("bad revision %q", r.PathValue("id")), "revisions are positive integers; see: stoa history")
	}
	rv, err := c.d.Revision(r.Context(), id)
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

// eventsKeepalive is how often an idle event stream sends an empty line,
// which keeps idle connections (and proxies) open.
const eventsKeepalive = 15 * time.Second

// events streams events as NDJSON: the stored backlog (after ?since=N, or
// the last ?last=N), then, with ?follow=1, new events as they happen,
// each flushed as it is sent.
func (c configAPI) events(w http.ResponseWriter, r *http.Request, p Peer) error {
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
		// Before reading the backlog: an event stored in between is
		// in both, and skipped once.
		live, cancel = c.d.FollowEvents()
		defer cancel()
	}
	backlog, err := c.d.Events(r.Context(), since, last)
	if err != nil {
		return err
	}
	out := startNDJSON(w)
	var seq int64
	for _, e := range backlog {
		if err := out.Write(e); err != nil {
			return nil
		}
		seq = e.Seq
	}
	out.Flush()
	if !follow {
		return nil
	}
	keepalive := time.NewTicker(eventsKeepalive)
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
			if err := out.Send(e); err != nil {
				return nil
			}
		case <-keepalive.C:
			if err := out.SendLine([]byte("\n")); err != nil {
				return nil
			}
		}
	}
}
