package localapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/store"
)

type auditAPI struct {
	a Audit
	d Daemon
}

func toAPIAuditEntry(e audit.Entry) api.AuditEntry {
	return api.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Tenant: e.Tenant,
		Revision: e.Revision, Details: e.Details, Prev: e.Prev, Hash: e.Hash}
}

// list streams the entries as NDJSON, oldest first.
func (a auditAPI) list(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	f := audit.Filter{Actor: q.Get("actor"), Action: q.Get("action"), Tenant: q.Get("namespace")}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad since %q", s), "an RFC 3339 time; the CLI takes durations such as 1h")
		}
		f.Since = t
	}
	f.Limit, _ = strconv.Atoi(q.Get("limit"))
	if !p.seesAll() {
		f.Keep = a.visible(r.Context(), p)
	}
	out := startNDJSON(w)
	// A read failure ends the stream early; the status line is sent.
	_ = a.a.List(f, func(e audit.Entry) error { return out.Write(toAPIAuditEntry(e)) })
	return nil
}

func (a auditAPI) verify(w http.ResponseWriter, r *http.Request, p Peer) error {
	res, err := a.a.Verify()
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, api.AuditVerify{OK: res.OK, Entries: res.Entries, Head: res.Head, BrokenAt: res.BrokenAt, Problem: res.Problem})
}

// visible shows a peer that reads only some tenants their entries: those
// of its tenants, and those of revisions that changed any of them with
// only those changes listed and counted. Entries of no tenant (XDP,
// daemon-wide) are for cluster admins.
func (a auditAPI) visible(ctx context.Context, p Peer) func(*audit.Entry) bool {
	revs := map[int64]*store.Revision{}
	return func(e *audit.Entry) bool {
		if e.Tenant != "" {
			return p.sees(e.Tenant)
		}
		if e.Revision == 0 || e.Target != fmt.Sprintf("revision %d", e.Revision) {
			return false
		}
		rv, ok := revs[e.Revision]
		if !ok {
			rv, _ = a.d.RevisionInfo(ctx, e.Revision)
			revs[e.Revision] = rv
		}
		if rv == nil {
			return false
		}
		seen, ok := visibleRevision(p, *rv)
		if !ok {
			return false
		}
		details := make(map[string]string, len(e.Details))
		for k, v := range e.Details {
			details[k] = v
		}
		details["changes"] = audit.ChangeList(seen.Refs, 50)
		details["summary"] = fmt.Sprintf("%d created, %d updated, %d deleted", seen.Summary.Create, seen.Summary.Update, seen.Summary.Delete)
		e.Details = details
		return true
	}
}
