package localapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/rbac"
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
	st := c.d.Status()
	if !p.seesAll() {
		// The daemon's internals (pid, paths, listeners, components,
		// GitOps) are for cluster admins; objects are counted over what
		// the peer reads.
		st = api.Status{Version: st.Version, Commit: st.Commit, StartedAt: st.StartedAt, Uptime: st.Uptime,
			Revision: st.Revision, Role: st.Role, Warnings: st.Warnings, Objects: map[string]int{}}
		live := c.d.Live()
		st.Revision = live.Revision
		for _, o := range live.Objects {
			if p.sees(tenantOf(o.Ref())) {
				st.Objects[string(o.Kind)]++
			}
		}
	}
	return WriteJSON(w, http.StatusOK, st)
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
	caller, err := applyCaller(p, req)
	if err != nil {
		return err
	}
	traceCaller(&caller, r, p)
	resp, err := c.d.Apply(req, caller)
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
	caller, err := deleteCaller(p, &req)
	if err != nil {
		return err
	}
	traceCaller(&caller, r, p)
	resp, err := c.d.Delete(&req, caller)
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
	if req.Force {
		if err := p.check(rbac.ActionForce, "", ""); err != nil {
			return err
		}
	}
	mode := checkRollback
	if req.DryRun {
		mode = checkPreview
	}
	caller := Caller{Actor: p.Actor, Allow: p.allowPlan(mode, nil)}
	traceCaller(&caller, r, p)
	resp, err := c.d.Rollback(&req, caller)
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
		if !p.sees(tenantOf(o.Ref())) {
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
		if !p.sees(tenantOf(ref)) {
			continue
		}
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
	all := p.seesAll()
	n := limit
	if !all {
		n = 0 // filtered below: the limit counts what the peer sees
	}
	revs, err := c.d.Revisions(r.Context(), n)
	if err != nil {
		return err
	}
	out := api.RevisionList{Current: c.d.Live().Revision, Items: []api.Revision{}}
	for _, rv := range revs {
		if !all {
			info, err := c.d.RevisionInfo(r.Context(), rv.ID)
			if err != nil {
				return err
			}
			var ok bool
			if rv, ok = visibleRevision(p, *info); !ok {
				continue
			}
		}
		out.Items = append(out.Items, toAPIRevision(rv))
		if limit > 0 && len(out.Items) == limit {
			break
		}
	}
	return WriteJSON(w, http.StatusOK, out)
}

// visibleRevision is a revision as a peer that reads only some tenants
// sees it: only their changes, counted; false when it changed none of
// them (the revision is then "not found").
func visibleRevision(p Peer, rv store.Revision) (store.Revision, bool) {
	if p.seesAll() {
		return rv, true
	}
	refs := rv.Refs[:0:0]
	var sum plan.Summary
	for _, c := range rv.Refs {
		if p.sees(tenantOf(c.Ref)) {
			refs = append(refs, c)
			countOp(&sum, c.Op)
		}
	}
	changes := rv.Changes[:0:0]
	for _, c := range rv.Changes {
		if p.sees(tenantOf(c.Ref)) {
			changes = append(changes, c)
		}
	}
	if len(rv.Changes) > 0 {
		sum = plan.Summarize(changes)
	}
	if len(refs) == 0 && len(changes) == 0 {
		return rv, false
	}
	rv.Refs, rv.Changes, rv.Summary = refs, changes, sum
	return rv, true
}

func countOp(s *plan.Summary, op plan.Op) {
	switch op {
	case plan.Create:
		s.Create++
	case plan.Update:
		s.Update++
	case plan.Delete:
		s.Delete++
	}
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
	seen, ok := visibleRevision(p, *rv)
	if !ok {
		return apiError(api.CodeNotFound, fmt.Sprintf("revision %d not found", id), "see: stoa history")
	}
	out := toAPIRevision(seen)
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
	vis := eventFilter{d: c.d, p: p}
	out := startNDJSON(w)
	var seq int64
	for _, e := range backlog {
		seq = e.Seq
		e, ok := vis.visible(r.Context(), e)
		if !ok {
			continue
		}
		if err := out.Write(e); err != nil {
			return nil
		}
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
			shown, ok := vis.visible(r.Context(), e)
			if !ok {
				continue
			}
			if err := out.Send(shown); err != nil {
				return nil
			}
		case <-keepalive.C:
			if err := out.SendLine([]byte("\n")); err != nil {
				return nil
			}
		}
	}
}

// applyCaller checks what an apply needs before it is planned — cluster
// admin to force past GitOps mode, editor on every namespace it prunes,
// cluster admin to prune everywhere or cluster-scoped objects — and
// returns the caller whose plan is checked.
func applyCaller(p Peer, req *api.ApplyRequest) (Caller, error) {
	if req.Force {
		if err := p.check(rbac.ActionForce, "", ""); err != nil {
			return Caller{}, err
		}
	}
	mode := checkApply
	if req.DryRun {
		mode = checkPreview
	} else if req.Prune {
		if req.Scope.All || req.Scope.ClusterScoped {
			if err := p.check(rbac.ActionDelete, "", "prune every tenant's objects"); err != nil {
				return Caller{}, err
			}
		}
		for _, ns := range req.Scope.Namespaces {
			if err := p.check(rbac.ActionDelete, ns, "prune objects of tenant "+ns); err != nil {
				return Caller{}, err
			}
		}
	}
	named := make([]spec.Ref, 0, len(req.Objects))
	for _, o := range req.Objects {
		if o != nil {
			named = append(named, o.Ref())
		}
	}
	return Caller{Actor: p.Actor, Allow: p.allowPlan(mode, named)}, nil
}

// deleteCaller checks a delete's refs as given, before the daemon looks
// them up (so "not found" never answers for a tenant the peer cannot
// see), and returns the caller whose plan — with what --cascade adds —
// is checked.
func deleteCaller(p Peer, req *api.DeleteRequest) (Caller, error) {
	if req.Force {
		if err := p.check(rbac.ActionForce, "", ""); err != nil {
			return Caller{}, err
		}
	}
	mode := checkApply
	if req.DryRun {
		mode = checkPreview
	}
	if allow := p.allowPlan(mode, req.Refs); allow != nil {
		asked := make([]plan.Change, len(req.Refs))
		for i, r := range req.Refs {
			asked[i] = plan.Change{Op: plan.Delete, Ref: r}
		}
		if err := allow(asked); err != nil {
			return Caller{}, err
		}
	}
	return Caller{Actor: p.Actor, Allow: p.allowPlan(mode, req.Refs)}, nil
}

// eventFilter shows a peer the events it may read: a tenant's events to
// its roles; a revision's event (config.applied, config.rolledback) to
// the roles of any tenant it changed, counting only their changes;
// daemon-wide events to cluster admins.
type eventFilter struct {
	d     Daemon
	p     Peer
	cache map[int64]*store.Revision
}

func (f *eventFilter) visible(ctx context.Context, e api.Event) (api.Event, bool) {
	if f.p.seesAll() {
		return e, true
	}
	if e.Tenant != "" {
		return e, f.p.sees(e.Tenant)
	}
	if e.Type != "config.applied" && e.Type != "config.rolledback" {
		return e, false
	}
	id := events.Int(e.Data["revision"])
	rv := f.cache[id]
	if rv == nil {
		var err error
		if rv, err = f.d.RevisionInfo(ctx, id); err != nil {
			return e, false
		}
		if f.cache == nil {
			f.cache = map[int64]*store.Revision{}
		}
		f.cache[id] = rv
	}
	seen, ok := visibleRevision(f.p, *rv)
	if !ok {
		return e, false
	}
	data := make(map[string]any, len(e.Data))
	for k, v := range e.Data {
		data[k] = v
	}
	data["create"], data["update"], data["delete"] = seen.Summary.Create, seen.Summary.Update, seen.Summary.Delete
	e.Data = data
	e.Message = fmt.Sprintf("revision %d: %s by %s", id, seen.Summary, rv.Actor)
	return e, true
}
