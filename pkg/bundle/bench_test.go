package bundle

import (
	"encoding/json"
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
