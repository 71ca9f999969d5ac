package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/audit"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// auditRuntime keeps the audit trail: every revision (apply, delete,
// rollback, gitops) from the revision log, other changes (keys,
// subscriptions, XDP blocks, logins) from the event log, and direct calls
// (replays, redeliveries). Both logs are read from persisted cursors that
// are committed with the entries.
type auditRuntime struct {
	d    *Daemon
	log  *audit.Log
	kick chan struct{}
	mu   sync.Mutex // one catch-up at a time

	cancel context.CancelFunc
	done   chan struct{}
}

const (
	auditEvents    = "events"
	auditRevisions = "revisions"
)

func newAuditRuntime(d *Daemon) (*auditRuntime, error) {
	l, err := audit.Open(d.store)
	if err != nil {
		return nil, err
	}
	a := &auditRuntime{d: d, log: l, kick: make(chan struct{}, 1)}
	if _, ok, err := l.Cursor(auditEvents); err != nil {
		return nil, err
	} else if !ok {
		// A new trail takes events from now on, and every revision
		// already made (they are kept, with their actors).
		seq, err := d.events.LastSeq()
		if err != nil {
			return nil, err
		}
		if _, err := l.Append(nil, map[string]int64{auditEvents: seq, auditRevisions: 0}); err != nil {
			return nil, err
		}
	}
	d.HandleAPI("GET "+api.PathAudit, a.serveList)
	d.HandleAPI("GET "+api.PathAuditVerify, a.serveVerify)
	return a, nil
}

func (a *auditRuntime) Name() string                   { return "audit" }
func (a *auditRuntime) Prepare(*State) (func(), error) { return func() {}, nil }

func (a *auditRuntime) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		a.d.events.Follow(ctx, a.kick, a.catchUp)
	}()
	return nil
}

func (a *auditRuntime) Stop(context.Context) error {
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
	return nil
}

func (a *auditRuntime) Status() api.Component {
	return api.Component{Name: "audit", State: "ok", Detail: "hash-chained trail"}
}

// record appends one entry now (for actions that emit no event).
func (a *auditRuntime) record(e audit.Entry) {
	a.catchUp() // keep the trail in order
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.Revision == 0 {
		e.Revision = a.d.State().Revision
	}
	if _, err := a.log.Append([]audit.Entry{e}, nil); err != nil {
		a.d.log.Error("audit", "action", e.Action, "err", err)
	}
}

// catchUp appends entries for the revisions and events after the cursors,
// in time order, committing the cursors with them.
func (a *auditRuntime) catchUp() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		evCur, _, err := a.log.Cursor(auditEvents)
		if err != nil {
			a.d.log.Warn("audit: read cursor", "err", err)
			return
		}
		revCur, _, err := a.log.Cursor(auditRevisions)
		if err != nil {
			a.d.log.Warn("audit: read cursor", "err", err)
			return
		}
		ctx := context.Background()
		var entries []audit.Entry
		for id := revCur + 1; id <= revCur+100; id++ {
			rv, err := store.RevisionInfo(ctx, a.d.store, id)
			if err != nil {
				break // not (yet) committed
			}
			entries = append(entries, revisionEntry(rv))
			revCur = id
		}
		var evs []api.Event
		err = a.d.store.View(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.Events().Since(ctx, evCur, 501)
			return err
		})
		if err != nil {
			a.d.log.Warn("audit: read events", "err", err)
			return
		}
		more := len(evs) > 500
		if more {
			evs = evs[:500]
		}
		for _, e := range evs {
			if action, ok := auditAction(e.Type); ok {
				entries = append(entries, a.entryFor(e, action))
			}
			evCur = e.Seq
		}
		if len(entries) == 0 && len(evs) == 0 {
			return
		}
		sort.SliceStable(entries, func(i, j int) bool { return entries[i].Time.Before(entries[j].Time) })
		if _, err := a.log.Append(entries, map[string]int64{auditEvents: evCur, auditRevisions: revCur}); err != nil {
			a.d.log.Error("audit: append", "err", err)
			return
		}
		if !more && len(entries) < 100 {
			return
		}
	}
}

func revisionEntry(rv *store.Revision) audit.Entry {
	e := audit.Entry{Time: rv.Time, Actor: rv.Actor, Action: rv.Action, Target: fmt.Sprintf("revision %d", rv.ID),
		Revision: rv.ID, Details: map[string]string{
			"changes": changeList(rv.Refs, 50),
			"summary": fmt.Sprintf("%d created, %d updated, %d deleted", rv.Summary.Create, rv.Summary.Update, rv.Summary.Delete),
		}}
	if e.Actor == "" {
		e.Actor = "stoad"
	}
	if rv.Message != "" {
		e.Details["message"] = rv.Message
	}
	return e
}

// auditAction maps the event types that are changes to audit actions;
// revisions are audited from the revision log, not their events.
func auditAction(typ string) (string, bool) {
	switch {
	case typ == "key.created":
		return "key.create", true
	case typ == "key.rotated":
		return "key.rotate", true
	case typ == "key.revoked":
		return "key.revoke", true
	case strings.HasPrefix(typ, "subscription."):
		return typ, true
	case typ == "xdp.block" || typ == "xdp.unblock":
		return typ, true
	case typ == "login" || typ == "auth.login":
		return "login", true
	}
	return "", false
}

func (a *auditRuntime) entryFor(e api.Event, action string) audit.Entry {
	ent := audit.Entry{Time: e.Time, Action: action, Tenant: e.Tenant, Details: map[string]string{}}
	str := func(k string) string { s, _ := e.Data[k].(string); return s }
	ent.Actor = str("actor")
	if ent.Actor == "" {
		ent.Actor = str("subject")
	}
	if ent.Actor == "" {
		ent.Actor = "stoad"
	}
	ent.Revision = dataInt(e.Data["revision"])
	if ent.Revision == 0 {
		ent.Revision = a.d.State().Revision
	}
	switch {
	case strings.HasPrefix(e.Type, "key."):
		ent.Target = "key " + firstOf(str("key"), str("old"))
	case strings.HasPrefix(e.Type, "subscription."):
		ent.Target = "Subscription/" + e.Tenant + "/" + str("subscription")
	case strings.HasPrefix(e.Type, "xdp."):
		ent.Target = firstOf(str("cidr"), str("prefix"), str("addr"), str("source"), str("ip"), e.Message)
	default:
		ent.Target = firstOf(str("target"), e.Message)
	}
	for k, v := range e.Data {
		if k == "actor" || k == "revision" {
			continue
		}
		switch v := v.(type) {
		case string:
			ent.Details[k] = v
		case nil:
		default:
			b, _ := json.Marshal(v)
			ent.Details[k] = string(b)
		}
	}
	ent.Details["event"] = store.EventIDs.Format(e.Seq)
	return ent
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// changeList renders "+ Tool/acme/x, ~ Plan/acme/y, - …" (at most max).
func changeList(cs []store.ChangeRef, max int) string {
	var b strings.Builder
	for i, c := range cs {
		if i == max {
			fmt.Fprintf(&b, ", … %d more", len(cs)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		sym := "~"
		switch c.Op {
		case plan.Create:
			sym = "+"
		case plan.Delete:
			sym = "-"
		}
		b.WriteString(sym + " " + c.Ref.String())
	}
	return b.String()
}

func (a *auditRuntime) serveList(w http.ResponseWriter, r *http.Request, p Peer) error {
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
	a.catchUp()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = a.log.List(f, func(e audit.Entry) error { return enc.Encode(api.AuditEntry(e)) })
	return nil
}

func (a *auditRuntime) serveVerify(w http.ResponseWriter, r *http.Request, p Peer) error {
	a.catchUp()
	res, err := a.log.Verify()
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, api.AuditVerify(res))
}

// dataInt reads an integer from event data: int64 when the event is fresh,
// float64 once it went through JSON (where fmt.Sprint would give 1e+06).
func dataInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}
