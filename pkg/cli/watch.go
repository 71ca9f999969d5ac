package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Watch event types, as in Kubernetes watches.
const (
	watchAdded    = "ADDED"
	watchModified = "MODIFIED"
	watchDeleted  = "DELETED"
)

// WatchEvent is one line of `stoa get --watch -o json`.
type WatchEvent struct {
	Type     string       `json:"type"`
	Revision int64        `json:"revision"`
	Object   *spec.Object `json:"object"`
}

// watch prints the selected objects, then the objects each new revision
// changes. It follows stoad's event stream and, on every config.* event of
// a newer revision, reads the objects again and prints what differs from
// what it printed last — so nothing is missed even when several revisions
// land between two reads, and nothing printed twice.
func (o *GetOptions) watch(ctx context.Context) error {
	var (
		seen    map[spec.Ref][]byte // encoding of each object last printed
		objs    map[spec.Ref]*spec.Object
		lastRev int64
		stream  = &streamWriter{f: o.F}
	)
	refresh := func() error {
		items, rev, err := o.fetch(ctx)
		if err != nil {
			return err
		}
		if o.Name != "" && len(items) > 1 {
			return fmt.Errorf("%s %q exists in several tenants: pass -n TENANT", o.Kind, o.Name)
		}
		initial := seen == nil
		cur := make(map[spec.Ref][]byte, len(items))
		curObjs := make(map[spec.Ref]*spec.Object, len(items))
		var changed []*spec.Object
		events := map[spec.Ref]string{}
		for _, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				return err
			}
			ref := it.Ref()
			cur[ref], curObjs[ref] = b, it
			prev, ok := seen[ref]
			switch {
			case !ok:
				events[ref] = watchAdded
			case !bytes.Equal(prev, b):
				events[ref] = watchModified
			default:
				continue
			}
			changed = append(changed, it)
		}
		for ref := range seen {
			if _, ok := cur[ref]; !ok {
				events[ref] = watchDeleted
				changed = append(changed, objs[ref])
			}
		}
		seen, objs, lastRev = cur, curObjs, max(lastRev, rev)
		sort.SliceStable(changed, func(i, j int) bool { return changed[i].Ref().Less(changed[j].Ref()) })
		if o.F.structured() {
			for _, it := range changed {
				if err := stream.write(WatchEvent{Type: events[it.Ref()], Revision: rev, Object: it}); err != nil {
					return err
				}
			}
			return nil
		}
		if initial {
			if len(changed) == 0 {
				fmt.Fprintln(o.F.IO.ErrOut, "no objects found; watching for changes")
				return nil
			}
			return printTable(o.F.IO.Out, changed, o.F.wide(), nil)
		}
		if len(changed) == 0 {
			return nil
		}
		fmt.Fprintln(o.F.IO.Out)
		return printTable(o.F.IO.Out, changed, o.F.wide(), events)
	}
	err := o.F.Client().Events(ctx, client.EventsOptions{Follow: true, Last: 1, Connected: refresh}, func(e api.Event) error {
		if !strings.HasPrefix(e.Type, "config.") {
			return nil
		}
		if rev, ok := e.Data["revision"].(float64); ok && int64(rev) <= lastRev {
			return nil // already printed (the backlog, or the first read saw it)
		}
		return refresh()
	})
	if ctx.Err() != nil {
		return nil
	}
	var ue *client.UnreachableError
	var ae *api.Error
	if err != nil && (errors.As(err, &ue) || errors.As(err, &ae) || seen == nil) {
		return err // refused before the watch began: the usual error
	}
	// The stream broke or ended: stoad stopped or restarts.
	msg := "watch: stoad closed the event stream (stopped or restarting?)"
	if err != nil {
		msg += ": " + err.Error()
	}
	return &ExitError{Code: ExitUnreachable, Err: errors.New(msg)}
}
