package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/events"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/state"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// TrailOptions configure a Trail.
type TrailOptions struct {
	Store  store.Store
	Events *events.Log
	// Revision is the live revision's number, recorded with entries
	// that carry none.
	Revision func() int64
	Log      *slog.Logger
}

// Trail is the runtime that keeps the audit trail: every revision
// (apply, delete, rollback, gitops) from the revision log, other changes
// (keys, subscriptions, XDP blocks, logins) from the event log, and
// direct calls (replays, redeliveries). Both logs are read from persisted
// cursors that are committed with the entries.
type Trail struct {
	o    TrailOptions
	log  *Log
	kick chan struct{}
	mu   sync.Mutex // one catch-up at a time

	cancel context.CancelFunc
	done   chan struct{}
}

const (
	auditEvents    = "events"
	auditRevisions = "revisions"
)

// NewTrail opens the trail kept in o.Store; a new one starts with the
// events from now on and every revision already made.
func NewTrail(o TrailOptions) (*Trail, error) {
	l, err := Open(o.Store)
	if err != nil {
		return nil, err
	}
	a := &Trail{o: o, log: l, kick: make(chan struct{}, 1)}
	if _, ok, err := l.Cursor(auditEvents); err != nil {
		return nil, err
	} else if !ok {
		// A new trail takes events from now on, and every revision
		// already made (they are kept, with their actors).
		seq, err := o.Events.LastSeq()
		if err != nil {
			return nil, err
		}
		if _, err := l.Append(nil, map[string]int64{auditEvents: seq, auditRevisions: 0}); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *Trail) Name() string                            { return "audit" }
func (a *Trail) Prepare(*state.Revision) (func(), error) { return func() {}, nil }

func (a *Trail) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		a.o.Events.Follow(ctx, a.kick, a.catchUp)
	}()
	return nil
}

func (a *Trail) Stop(context.Context) error {
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
	return nil
}

func (a *Trail) Status() api.Component {
	return api.Component{Name: "audit", State: "ok", Detail: "hash-chained trail"}
}

// Record appends one entry now (for actions that emit no event).
func (a *Trail) Record(e Entry) {
	a.catchUp() // keep the trail in order
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.Revision == 0 {
		e.Revision = a.o.Revision()
	}
	if _, err := a.log.Append([]Entry{e}, nil); err != nil {
		a.o.Log.Error("audit", "action", e.Action, "err", err)
	}
}

// catchUp appends entries for the revisions and events after the cursors,
// in time order, committing the cursors with them.
func (a *Trail) catchUp() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		evCur, _, err := a.log.Cursor(auditEvents)
		if err != nil {
			a.o.Log.Warn("audit: read cursor", "err", err)
			return
		}
		revCur, _, err := a.log.Cursor(auditRevisions)
		if err != nil {
			a.o.Log.Warn("audit: read cursor", "err", err)
			return
		}
		ctx := context.Background()
		var entries []Entry
		for id := revCur + 1; id <= revCur+100; id++ {
			rv, err := store.RevisionInfo(ctx, a.o.Store, id)
			if err != nil {
				break // not (yet) committed
			}
			entries = append(entries, revisionEntry(rv))
			revCur = id
		}
		var evs []api.Event
		err = a.o.Store.View(ctx, func(tx store.Tx) error {
			var err error
			evs, err = tx.Events().Since(ctx, evCur, 501)
			return err
		})
		if err != nil {
			a.o.Log.Warn("audit: read events", "err", err)
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
			a.o.Log.Error("audit: append", "err", err)
			return
		}
		if !more && len(entries) < 100 {
			return
		}
	}
}

func revisionEntry(rv *store.Revision) Entry {
	e := Entry{Time: rv.Time, Actor: rv.Actor, Action: rv.Action, Target: fmt.Sprintf("revision %d", rv.ID),
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
	case typ == "policy.denied":
		// A call a CEL policy refused (docs/policy.md): who, which tool,
		// which rule.
		return typ, true
	}
	return "", false
}

func (a *Trail) entryFor(e api.Event, action string) Entry {
	ent := Entry{Time: e.Time, Action: action, Tenant: e.Tenant, Details: map[string]string{}}
	str := func(k string) string { s, _ := e.Data[k].(string); return s }
	ent.Actor = str("actor")
	if ent.Actor == "" {
		ent.Actor = str("subject")
	}
	if ent.Actor == "" {
		ent.Actor = "stoad"
	}
	ent.Revision = events.Int(e.Data["revision"])
	if ent.Revision == 0 {
		ent.Revision = a.o.Revision()
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

// List catches up and calls fn with every entry f matches, oldest first.
func (a *Trail) List(f Filter, fn func(Entry) error) error {
	a.catchUp()
	return a.log.List(f, fn)
}

// Verify catches up and checks the whole chain.
func (a *Trail) Verify() (Result, error) {
	a.catchUp()
	return a.log.Verify()
}
