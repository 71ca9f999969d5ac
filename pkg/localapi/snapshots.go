package localapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/snapshot"
)

type snapshotsAPI struct{ s Snapshots }

// snapshotError gives a refused snapshot operation its code and a hint.
func snapshotError(err error) error {
	switch {
	case errors.Is(err, snapshot.ErrNotFound):
		return apiError(api.CodeNotFound, err.Error(), "list snapshots with: stoa snapshots list -A")
	case errors.Is(err, snapshot.ErrToolGone):
		return apiError(api.CodeNotFound, err.Error(), "a replay goes through the tool's current route")
	case errors.Is(err, snapshot.ErrNoRoute):
		return apiError(api.CodeConflict, err.Error(), "")
	case errors.Is(err, snapshot.ErrUpstreamUnavailable):
		return apiError(api.CodeUnavailable, err.Error(), "")
	}
	return err
}

func toAPISnapshotSummary(s snapshot.Summary) api.SnapshotSummary {
	return api.SnapshotSummary{ID: s.ID, Time: s.Time, Tenant: s.Tenant, Tool: s.Tool, Consumer: s.Consumer, Method: s.Method,
		Target: s.Target, Status: s.Status, Reason: s.Reason, Duration: s.Duration, RequestID: s.RequestID,
		Count: s.Count, LastSeen: s.LastSeen}
}

func toAPISnapshotMessage(m snapshot.Message) api.SnapshotMessage {
	out := api.SnapshotMessage{Method: m.Method, URL: m.URL, Target: m.Target, Injected: m.Injected, Status: m.Status,
		Body: m.Body, BodyBytes: m.BodyBytes, Truncated: m.Truncated, Omitted: m.Omitted}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, api.SnapshotHeader{Name: h.Name, Value: h.Value, Redacted: h.Redacted})
	}
	return out
}

// toAPISnapshot is a stored snapshot on the wire, with its curl.
func toAPISnapshot(sn *snapshot.Snapshot) api.Snapshot {
	return api.Snapshot{ID: sn.ID, Time: sn.Time, Source: sn.Source, Tenant: sn.Tenant, Tool: sn.Tool, Operation: sn.Operation,
		Consumer: sn.Consumer, Revision: sn.Revision, RequestID: sn.RequestID, Upstream: sn.Upstream, Reason: sn.Reason,
		Error: sn.Error, Duration: sn.Duration, UpstreamStatus: sn.UpstreamStatus,
		Request: toAPISnapshotMessage(sn.Request), Response: toAPISnapshotMessage(sn.Response), Redactions: sn.Redactions,
		Origin: sn.Origin, Route: sn.Route, Count: sn.Count, LastSeen: sn.LastSeen, Curl: snapshot.Curl(sn)}
}

func toAPIReplay(r snapshot.ReplayResult) api.ReplayResult {
	return api.ReplayResult{Snapshot: r.Snapshot, URL: r.URL, OldStatus: r.OldStatus, OldReason: r.OldReason, Status: r.Status,
		Error: r.Error, Duration: r.Duration, OldDuration: r.OldDuration, Body: r.Body, Warnings: r.Warnings}
}

func (s snapshotsAPI) list(w http.ResponseWriter, r *http.Request, p Peer) error {
	q := r.URL.Query()
	f := snapshot.Filter{Tenant: q.Get("namespace"), Tool: q.Get("tool")}
	f.Limit, _ = strconv.Atoi(q.Get("limit"))
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return apiError(api.CodeBadRequest, fmt.Sprintf("bad since %q", v), "an RFC 3339 time")
		}
		f.Since = t
	}
	list, err := s.s.List(f)
	if err != nil {
		return err
	}
	out := api.SnapshotList{Items: []api.SnapshotSummary{}, Dropped: s.s.Dropped()}
	for _, sm := range list {
		out.Items = append(out.Items, toAPISnapshotSummary(sm))
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (s snapshotsAPI) get(w http.ResponseWriter, r *http.Request, p Peer) error {
	sn, err := s.s.Get(r.PathValue("id"))
	if err != nil {
		return snapshotError(err)
	}
	return WriteJSON(w, http.StatusOK, toAPISnapshot(sn))
}

func (s snapshotsAPI) replay(w http.ResponseWriter, r *http.Request, p Peer) error {
	res, err := s.s.Replay(r.Context(), r.PathValue("id"), p.Actor)
	if err != nil {
		return snapshotError(err)
	}
	return WriteJSON(w, http.StatusOK, toAPIReplay(res))
}
