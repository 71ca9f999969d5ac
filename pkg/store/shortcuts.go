package store

import (
	"context"
	"fmt"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Shortcuts for reads that are one transaction of one domain, written
// once here over the interfaces so every Store gets them.

// Load returns every live object and the current revision, read together.
func Load(ctx context.Context, s Store) ([]*spec.Object, int64, error) {
	var (
		objs []*spec.Object
		cur  int64
	)
	err := s.View(ctx, func(tx Tx) error {
		var err error
		if cur, err = tx.Revisions().Current(ctx); err != nil {
			return err
		}
		objs, err = tx.Revisions().Objects(ctx)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("load state: %w", err)
	}
	return objs, cur, nil
}

// StateAt reconstructs the objects that were live right after revision
// id, by undoing every later revision on top of the current state, all in
// one read transaction. Revision 0 is the empty state before the first
// apply.
func StateAt(ctx context.Context, s Store, id int64) ([]*spec.Object, error) {
	var out []*spec.Object
	err := s.View(ctx, func(tx Tx) error {
		revs := tx.Revisions()
		cur, err := revs.Current(ctx)
		if err != nil {
			return err
		}
		if id > cur || id < 0 {
			return fmt.Errorf("revision %d: %w (current is %d)", id, ErrNotFound, cur)
		}
		live, err := revs.Objects(ctx)
		if err != nil {
			return err
		}
		by := make(map[spec.Ref]*spec.Object, len(live))
		for _, o := range live {
			by[o.Ref()] = o
		}
		err = revs.ChangesAfter(ctx, id, func(_ int64, changes []plan.Change) error {
			for i := len(changes) - 1; i >= 0; i-- {
				ch := changes[i]
				switch ch.Op {
				case plan.Create:
					delete(by, ch.Ref)
				case plan.Update, plan.Delete:
					by[ch.Ref] = ch.Before
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reconstruct revision %d: %w", id, err)
		}
		out = make([]*spec.Object, 0, len(by))
		for _, o := range by {
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	plan.SortObjects(out)
	return out, nil
}

// ListRevisions lists revision headers, newest first (at most limit; 0: all).
func ListRevisions(ctx context.Context, s Store, limit int) ([]Revision, error) {
	var out []Revision
	err := s.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.Revisions().List(ctx, limit)
		return err
	})
	return out, err
}

// RevisionInfo returns one revision with the references of its changes
// but not their objects.
func RevisionInfo(ctx context.Context, s Store, id int64) (*Revision, error) {
	var rev *Revision
	err := s.View(ctx, func(tx Tx) error {
		var err error
		rev, err = tx.Revisions().Get(ctx, id)
		return err
	})
	return rev, err
}

// RevisionWithChanges returns one revision with its changes and their
// objects.
func RevisionWithChanges(ctx context.Context, s Store, id int64) (*Revision, error) {
	var rev *Revision
	err := s.View(ctx, func(tx Tx) error {
		var err error
		if rev, err = tx.Revisions().Get(ctx, id); err != nil {
			return err
		}
		rev.Changes, err = tx.Revisions().Changes(ctx, id)
		return err
	})
	return rev, err
}

// AppendEvent stores one event in its own transaction (see
// Events.Append) and returns it with Seq set.
func AppendEvent(ctx context.Context, s Store, e api.Event) (api.Event, error) {
	err := s.Update(ctx, func(tx Tx) error {
		var err error
		e, err = tx.Events().Append(ctx, e)
		return err
	})
	return e, err
}

// ReadEvents returns the events with Seq > after, oldest first; with last > 0
// the last `last` events instead.
func ReadEvents(ctx context.Context, s Store, after int64, last int) ([]api.Event, error) {
	var out []api.Event
	err := s.View(ctx, func(tx Tx) error {
		var err error
		if last > 0 {
			out, err = tx.Events().Last(ctx, last)
		} else {
			out, err = tx.Events().Since(ctx, after, 0)
		}
		return err
	})
	return out, err
}

// Ping checks that the store answers (a read of the current revision): a
// readiness probe. A database store that cannot be reached returns
// ErrUnavailable.
func Ping(ctx context.Context, s Store) error {
	return s.View(ctx, func(tx Tx) error {
		_, err := tx.Revisions().Current(ctx)
		return err
	})
}
