package localapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
)

type auditAPI struct{ a Audit }

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
