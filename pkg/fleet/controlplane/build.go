package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/store"
)

// NextBundle makes revision rev's bundle from the previous revision's and
// what changed since: upsert are the objects created or changed (as the
// store holds them), del the refs deleted. Only the changed objects are
// encoded, so a one-tool change in 10,000 tools takes tens of
// milliseconds where bundle.Build takes most of a second.
//
// The result is exactly what bundle.Build(rev, objects) gives: the new
// bytes are hashed, and bundle's own Delta.Apply rebuilds them and checks
// that hash, so a divergence is an error (the caller falls back to
// Build), never a second encoding of one revision.
func NextBundle(prev *bundle.Bundle, rev int64, upsert []*spec.Object, del []spec.Ref) (*bundle.Bundle, error) {
	if prev == nil {
		return nil, errors.New("next bundle: no previous bundle")
	}
	if rev <= prev.Revision() || rev > bundle.MaxRevision {
		return nil, fmt.Errorf("next bundle: revision %d does not follow %d", rev, prev.Revision())
	}
	lines, err := objectLines(prev)
	if err != nil {
		return nil, err
	}
	objs := prev.Objects()
	index := make(map[spec.Ref]int, len(objs))
	for i, o := range objs {
		index[o.Ref()] = i
	}

	type up struct {
		obj  *spec.Object
		line []byte
	}
	var (
		buf  bytes.Buffer
		ups  []up
		seen = map[spec.Ref]bool{}
	)
	for _, o := range upsert {
		r := o.Ref()
		if seen[r] {
			return nil, fmt.Errorf("next bundle: %s is upserted twice", r)
		}
		seen[r] = true
		line, err := canonicalLine(&buf, o)
		if err != nil {
			return nil, fmt.Errorf("next bundle: %s: %w", r, err)
		}
		if i, ok := index[r]; ok && bytes.Equal(lines[i], line) {
			continue // unchanged
		}
		ups = append(ups, up{o, line})
	}
	sort.Slice(ups, func(a, b int) bool { return ups[a].obj.Ref().Less(ups[b].obj.Ref()) })
	deleted := map[spec.Ref]bool{}
	var dels []spec.Ref
	for _, r := range del {
		if seen[r] {
			return nil, fmt.Errorf("next bundle: %s is both upserted and deleted", r)
		}
		if _, ok := index[r]; ok && !deleted[r] {
			deleted[r] = true
			dels = append(dels, r)
		}
	}
	sort.Slice(dels, func(a, b int) bool { return dels[a].Less(dels[b]) })

	// Rebuild hashes the result line by line; the unchanged lines are
	// prev's own.
	d := bundle.Delta{APIVersion: spec.APIVersion, Kind: bundle.DeltaKind,
		From: bundle.VersionOf(prev), To: bundle.Version{Revision: rev}, Delete: dels}
	for _, u := range ups {
		d.Upsert = append(d.Upsert, u.obj)
	}
	next, err := d.Rebuild(prev)
	if err != nil {
		return nil, fmt.Errorf("next bundle: %w", err)
	}
	return next, nil
}

// objectLines are a bundle's object lines (without the separating comma).
func objectLines(b *bundle.Bundle) ([][]byte, error) {
	lines := make([][]byte, b.Len())
	for i := range lines {
		lines[i] = b.Line(i)
	}
	return lines, nil
}

// canonicalLine is an object's bundle line, refused if it would not
// decode to itself (as bundle.Build refuses it).
func canonicalLine(buf *bytes.Buffer, o *spec.Object) ([]byte, error) {
	buf.Reset()
	if err := plan.Canonical(buf, o); err != nil {
		return nil, err
	}
	line := bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	var back spec.Object
	if err := back.UnmarshalJSON(line); err != nil {
		return nil, fmt.Errorf("its JSON does not decode: %w", err)
	}
	buf.Reset()
	if err := plan.Canonical(buf, &back); err != nil {
		return nil, err
	}
	if !bytes.Equal(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), line) {
		return nil, errors.New("its JSON does not decode to the same object")
	}
	return line, nil
}

// Follower turns every revision of a store into a signed bundle and
// publishes it to a MemorySource: what makes a stoad a control plane.
// Every replica sharing a database runs one; they agree byte for byte,
// since bundles are canonical.
type Follower struct {
	Store  store.Store
	Signer signature.Signer
	Source *MemorySource
	Log    *slog.Logger
	// OnPublish, if set, is called after each revision is published, with
	// how long building and signing took and whether it was built from
	// the previous bundle (incremental) or from every object.
	OnPublish func(s *Signed, took time.Duration, incremental bool)
}

// Run publishes the current revision, then every new one, until ctx is
// done or the store closes.
func (f *Follower) Run(ctx context.Context) error {
	changes := f.Store.Watch(ctx)
	if err := f.sync(ctx); err != nil {
		f.log().Error("fleet: publish bundle", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c, ok := <-changes:
			if !ok {
				return ctx.Err()
			}
			if c.Revision == 0 && !c.Resync && !c.Domains.Has(store.DomainRevisions) {
				continue
			}
			if err := f.sync(ctx); err != nil {
				f.log().Error("fleet: publish bundle", "err", err)
			}
		}
	}
}

func (f *Follower) log() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}

// Sync publishes the store's current revision if it is not yet; Run
// calls it on every change.
func (f *Follower) Sync(ctx context.Context) error { return f.sync(ctx) }

func (f *Follower) sync(ctx context.Context) error {
	start := time.Now()
	cur, err := f.Source.Current(ctx)
	if err != nil {
		return err
	}
	var (
		rev         int64
		objs        []*spec.Object
		upsert      []*spec.Object
		del         []spec.Ref
		incremental bool
	)
	err = f.Store.View(ctx, func(tx store.Tx) error {
		revs := tx.Revisions()
		var err error
		if rev, err = revs.Current(ctx); err != nil {
			return err
		}
		if rev == 0 || (cur != nil && rev == cur.Bundle.Revision()) {
			return nil
		}
		if cur != nil && rev < cur.Bundle.Revision() {
			return fmt.Errorf("the store is at revision %d, behind the published revision %d (restored from a backup?): data planes refuse older revisions, so nothing is published until the store passes %d", rev, cur.Bundle.Revision(), cur.Bundle.Revision())
		}
		if cur != nil {
			// Newest change first: the first seen per object is its state.
			done := map[spec.Ref]bool{}
			err := revs.ChangesAfter(ctx, cur.Bundle.Revision(), func(_ int64, chs []plan.Change) error {
				for k := len(chs) - 1; k >= 0; k-- {
					ch := chs[k]
					if done[ch.Ref] {
						continue
					}
					done[ch.Ref] = true
					if ch.Op == plan.Delete {
						del = append(del, ch.Ref)
					} else if ch.After != nil {
						upsert = append(upsert, ch.After)
					}
				}
				return nil
			})
			if err == nil {
				incremental = true
				return nil
			}
			f.log().Warn("fleet: read changes for an incremental bundle; building it whole", "err", err)
		}
		objs, err = revs.Objects(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("publish revision: %w", err)
	}
	if rev == 0 || (cur != nil && rev == cur.Bundle.Revision()) {
		return nil
	}
	var b *bundle.Bundle
	if incremental {
		if b, err = NextBundle(cur.Bundle, rev, upsert, del); err != nil {
			f.log().Warn("fleet: incremental bundle failed; building it whole", "revision", rev, "err", err)
			incremental = false
			if objs, err = store.StateAt(ctx, f.Store, rev); err != nil {
				return fmt.Errorf("publish revision %d: %w", rev, err)
			}
		}
	}
	if b == nil {
		if b, err = bundle.Build(rev, objs); err != nil {
			return fmt.Errorf("publish revision %d: %w", rev, err)
		}
	}
	sig, err := bundle.SignBundle(b, f.Signer)
	if err != nil {
		return fmt.Errorf("publish revision %d: %w", rev, err)
	}
	s := &Signed{Bundle: b, Signature: sig}
	if err := f.Source.Publish(s); err != nil {
		return err
	}
	if f.OnPublish != nil {
		f.OnPublish(s, time.Since(start), incremental)
	}
	return nil
}
