// Package state holds Revision, one immutable revision of the live objects
// with indexes the runtimes compile from. It sits between the spec model and
// the runtimes so neither the daemon nor any runtime imports the other.
package state

import (
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Revision is one revision of the live objects. It is never modified after
// it is published.
type Revision struct {
	Revision int64
	Objects  []*spec.Object
	// Digests are the live objects' canonical-JSON SHA-256 digests, set by
	// the daemon.
	Digests plan.Digests
	by      map[spec.Ref]*spec.Object
	gateway *spec.GatewaySpec
	// kinds is where each kind's objects lie in Objects, when they are
	// contiguous (dependency order groups them): OfKind is then a
	// subslice, not a scan and a copy, for every runtime on every reload.
	kinds map[spec.Kind]span
}

type span struct{ lo, hi, n int }

// New indexes objs (already sorted) as revision rev. Runtimes compile
// from defaulted specs and hold no defaults of their own, so New defaults
// every object in place. Default is idempotent and writes nothing to an
// object already defaulted, as every object stoad stores is: for those
// this only checks, and it is safe while other revisions read them.
func New(rev int64, objs []*spec.Object) *Revision {
	s := &Revision{Revision: rev, Objects: objs, by: make(map[spec.Ref]*spec.Object, len(objs))}
	s.kinds = map[spec.Kind]span{}
	for i, o := range objs {
		spec.Default(o)
		s.by[o.Ref()] = o
		sp, ok := s.kinds[o.Kind]
		if !ok {
			sp.lo = i
		}
		sp.hi, sp.n = i+1, sp.n+1
		s.kinds[o.Kind] = sp
		if o.Kind == spec.KindGateway {
			s.gateway = o.Spec.(*spec.GatewaySpec)
		}
	}
	if s.gateway == nil {
		o := &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindGateway, Metadata: spec.Metadata{Name: "default"}, Spec: &spec.GatewaySpec{}}
		spec.Default(o)
		s.gateway = o.Spec.(*spec.GatewaySpec)
	}
	return s
}

// Get returns the object with ref, or nil.
func (s *Revision) Get(ref spec.Ref) *spec.Object { return s.by[ref] }

// Gateway returns the Gateway spec, or the defaults when none is applied.
func (s *Revision) Gateway() *spec.GatewaySpec { return s.gateway }

// OfKind returns the objects of kind k in dependency order.
// The slice is shared: callers must not modify it.
func (s *Revision) OfKind(k spec.Kind) []*spec.Object {
	if sp, ok := s.kinds[k]; ok && sp.hi-sp.lo == sp.n {
		return s.Objects[sp.lo:sp.hi:sp.hi]
	} else if !ok && s.kinds != nil {
		return nil
	}
	var out []*spec.Object
	for _, o := range s.Objects {
		if o.Kind == k {
			out = append(out, o)
		}
	}
	return out
}

// Tenant returns the named tenant's spec, or nil.
func (s *Revision) Tenant(name string) *spec.TenantSpec {
	if o := s.by[spec.Ref{Kind: spec.KindTenant, Name: name}]; o != nil {
		return o.Spec.(*spec.TenantSpec)
	}
	return nil
}
