package bundle

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// The benchmarks use 10,000 tools across 20 tenants, the configuration
// scripts/bench-apply.sh generates. docs/bundles.md quotes their figures.

var benchRef = spec.Ref{Kind: spec.KindTool, Namespace: "tenant-07", Name: "tool-04567"}

// BenchmarkBuild10k is a control plane making a revision's bundle:
// canonical encoding of every object and the digest.
func BenchmarkBuild10k(b *testing.B) {
	objs := bigConfig(b)
	var size int
	for b.Loop() {
		bd, err := Build(1, objs)
		if err != nil {
			b.Fatal(err)
		}
		size = len(bd.Bytes())
		_ = bd.Digest()
	}
	b.ReportMetric(float64(size), "bundle-bytes")
}

// BenchmarkOpen10k is a data plane accepting a full bundle: digest,
// signature, strict parse.
func BenchmarkOpen10k(b *testing.B) {
	s, v := testKey(b)
	bd := mustBuild(b, 1, bigConfig(b))
	sig := mustSign(b, bd.Bytes(), s)
	for b.Loop() {
		if _, err := Open(bd.Bytes(), sig, v, OpenOptions{Digest: bd.Digest()}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign10k signs a 10,000-tool bundle.
func BenchmarkSign10k(b *testing.B) {
	s, _ := testKey(b)
	bd := mustBuild(b, 1, bigConfig(b))
	for b.Loop() {
		mustSign(b, bd.Bytes(), s)
	}
}

// BenchmarkDelta1of10k is a control plane making the delta for a
// one-tool change; delta-bytes is what goes on the wire.
func BenchmarkDelta1of10k(b *testing.B) {
	objs := bigConfig(b)
	from := mustBuild(b, 1, objs)
	to := mustBuild(b, 2, withToolDescription(objs, benchRef, "Changed."))
	s, _ := testKey(b)
	sig := mustSign(b, to.Bytes(), s)
	var size int
	for b.Loop() {
		d := Diff(from, to)
		d.Signature = sig
		wire, err := json.Marshal(d)
		if err != nil {
			b.Fatal(err)
		}
		size = len(wire)
	}
	b.ReportMetric(float64(size), "delta-bytes")
}

// BenchmarkOpenDelta1of10k is a data plane accepting that delta: decode,
// rebuild the 10,000-tool bundle, check digest and signature.
func BenchmarkOpenDelta1of10k(b *testing.B) {
	objs := bigConfig(b)
	from := mustBuild(b, 1, objs)
	to := mustBuild(b, 2, withToolDescription(objs, benchRef, "Changed."))
	s, v := testKey(b)
	d := Diff(from, to)
	d.Signature = mustSign(b, to.Bytes(), s)
	wire, _ := json.Marshal(d)
	for b.Loop() {
		got, err := ParseDelta(wire)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenDelta(got, from, v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLastGood1of10k keeps the last good bundle after a one-tool
// change in 10,000 tools: whole (the 9.8 MB pair and the pointer, as
// every change did before bundle.Store), or as the Store does (the delta
// from the bundle written before, and the pointer). Both fsync; the
// bundles are made and signed outside the timer.
func BenchmarkLastGood1of10k(b *testing.B) {
	objs := bigConfig(b)
	s, _ := testKey(b)
	first := mustBuild(b, 1, objs)
	tools := []spec.Ref{}
	for _, o := range objs {
		if o.Kind == spec.KindTool {
			tools = append(tools, o.Ref())
		}
	}
	next := func(prev *Bundle) (*Bundle, []byte) {
		var changed *spec.Object
		for _, o := range prev.Objects() {
			if o.Ref() == tools[int(prev.Revision())%len(tools)] {
				changed = o
			}
		}
		c := *changed
		ts := *c.Spec.(*spec.ToolSpec)
		ts.Description = fmt.Sprintf("revision %d", prev.Revision()+1)
		c.Spec = &ts
		d := Delta{APIVersion: spec.APIVersion, Kind: DeltaKind, From: VersionOf(prev), To: Version{Revision: prev.Revision() + 1}, Upsert: []*spec.Object{&c}}
		nb, err := d.Rebuild(prev)
		if err != nil {
			b.Fatal(err)
		}
		sig, err := SignBundle(nb, s)
		if err != nil {
			b.Fatal(err)
		}
		return nb, sig
	}
	for _, mode := range []string{"whole", "store"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			st := NewStore(dir)
			write := func(bd *Bundle, sig []byte) error {
				if mode == "whole" {
					bd.Bytes() // before bundle.Store, every bundle was joined
					return WriteFileAtomic(dir, bd, sig)
				}
				return st.Write(bd, sig)
			}
			cur := first
			if err := write(cur, mustSign(b, cur.Bytes(), s)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				nb, sig := next(cur)
				b.StartTimer()
				if err := write(nb, sig); err != nil {
					b.Fatal(err)
				}
				cur = nb
			}
		})
	}
}
