package bundle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// transmit sends d as JSON the plain way (json.Marshal escapes HTML) and
// reads it back as a receiver would.
func transmit(t testing.TB, d Delta) *Delta {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDelta(b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestDeltaRebuildsExactBytes(t *testing.T) {
	s, v := testKey(t)
	objs := testObjects(t)
	from := mustBuild(t, 10, objs)
	tool := spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "billing-api"}
	changed := withToolDescription(objs, tool, "Now with <b>bold</b> & more")
	added := loadSpecs(t, "add.yaml", []byte("apiVersion: stoa.io/v1alpha1\nkind: Tenant\nmetadata: {name: initech}\nspec: {displayName: Initech}\n"))[0]
	var removedWebhook []*spec.Object
	for _, o := range changed {
		if o.Kind != spec.KindWebhook {
			removedWebhook = append(removedWebhook, o)
		}
	}
	for _, tc := range []struct {
		name           string
		objs           []*spec.Object
		upsert, delete int
	}{
		{"nothing changed but the revision", objs, 0, 0},
		{"one tool changed", changed, 1, 0},
		{"one object added", append(append([]*spec.Object(nil), objs...), added), 1, 0},
		{"one deleted, one changed", removedWebhook, 1, 1},
		{"everything deleted", nil, 0, len(objs)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to := mustBuild(t, 11, tc.objs)
			d := Diff(from, to)
			if len(d.Upsert) != tc.upsert || len(d.Delete) != tc.delete {
				t.Fatalf("delta has %d upserts, %d deletes; want %d, %d", len(d.Upsert), len(d.Delete), tc.upsert, tc.delete)
			}
			d.Signature = mustSign(t, to.Bytes(), s)
			got, err := OpenDelta(transmit(t, d), from, v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), to.Bytes()) || got.Digest() != to.Digest() || got.Revision() != 11 {
				t.Fatalf("rebuilt bundle differs from the full one:\n%s\nwant\n%s", got.Bytes(), to.Bytes())
			}
			// The rebuilt bundle is as good as a parsed one.
			p, err := Parse(got.Bytes())
			if err != nil || p.Len() != got.Len() {
				t.Fatalf("Parse(rebuilt) = %v", err)
			}
		})
	}
}

// TestDeltaRandomWalk applies chains of random changes, each shipped as a
// delta from the previous revision, and checks every rebuilt bundle is the
// full one.
func TestDeltaRandomWalk(t *testing.T) {
	s, v := testKey(t)
	pool := loadSpecs(t, "pool.yaml", toolsYAML(60, 4, ""))
	r := rand.New(rand.NewPCG(7, 9))
	cur := map[spec.Ref]*spec.Object{}
	for _, o := range pool {
		if o.Kind == spec.KindTenant || r.IntN(2) == 0 {
			cur[o.Ref()] = o
		}
	}
	list := func() []*spec.Object {
		var out []*spec.Object
		for _, o := range cur {
			out = append(out, o)
		}
		return out
	}
	held := mustBuild(t, 1, list())
	for rev := int64(2); rev < 40; rev++ {
		for k := r.IntN(4); k >= 0; k-- {
			o := pool[r.IntN(len(pool))]
			switch _, ok := cur[o.Ref()]; {
			case o.Kind == spec.KindTenant:
			case ok && r.IntN(2) == 0:
				delete(cur, o.Ref())
			default:
				cur[o.Ref()] = withToolDescription([]*spec.Object{o}, o.Ref(), fmt.Sprintf("rev %d", rev))[0]
			}
		}
		full := mustBuild(t, rev, list())
		d := Diff(held, full)
		d.Signature = mustSign(t, full.Bytes(), s)
		got, err := OpenDelta(transmit(t, d), held, v)
		if err != nil {
			t.Fatalf("revision %d: %v", rev, err)
		}
		if got.Digest() != full.Digest() {
			t.Fatalf("revision %d: rebuilt %s, want %s", rev, got.Digest(), full.Digest())
		}
		held = got
	}
}

func TestDeltaRefusals(t *testing.T) {
	s, v := testKey(t)
	objs := testObjects(t)
	b1 := mustBuild(t, 1, objs)
	tool := spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "billing-api"}
	b2 := mustBuild(t, 2, withToolDescription(objs, tool, "v2"))
	b3 := mustBuild(t, 3, withToolDescription(objs, tool, "v3"))
	good := func() *Delta {
		d := Diff(b2, b3)
		d.Signature = mustSign(t, b3.Bytes(), s)
		return transmit(t, d)
	}
	if _, err := OpenDelta(good(), b2, v); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(d *Delta)
		held   *Bundle
		reason string
	}{
		{"held revision is another", func(*Delta) {}, b1, "base"},
		{"nothing held", func(*Delta) {}, nil, "base"},
		{"upsert tampered", func(d *Delta) {
			d.Upsert[0] = withToolDescription(d.Upsert, tool, "evil")[0]
		}, b2, "digest"},
		{"upsert dropped", func(d *Delta) { d.Upsert = nil }, b2, "digest"},
		{"tampered and digest forged", func(d *Delta) {
			d.Upsert[0] = withToolDescription(d.Upsert, tool, "evil")[0]
			d.To.Digest = mustBuild(t, 3, withToolDescription(objs, tool, "evil")).Digest()
		}, b2, "signature"},
		{"signature of another revision", func(d *Delta) { d.Signature = mustSign(t, b2.Bytes(), s) }, b2, "signature"},
		{"no signature", func(d *Delta) { d.Signature = nil }, b2, "signature"},
		{"backwards", func(d *Delta) {
			back := Diff(b2, mustBuild(t, 1, withToolDescription(objs, tool, "v3")))
			back.Signature = mustSign(t, mustBuild(t, 1, withToolDescription(objs, tool, "v3")).Bytes(), s)
			*d = back
		}, b2, "stale"},
		{"deletes what is not held", func(d *Delta) {
			d.Delete = append(d.Delete, spec.Ref{Kind: spec.KindTool, Namespace: "acme", Name: "ghost"})
		}, b2, "malformed"},
		{"deletes twice", func(d *Delta) {
			d.Delete = []spec.Ref{{Kind: spec.KindWebhook, Namespace: "acme", Name: "ops"}, {Kind: spec.KindWebhook, Namespace: "acme", Name: "ops"}}
		}, b2, "malformed"},
		{"upserts and deletes one object", func(d *Delta) { d.Delete = []spec.Ref{tool} }, b2, "malformed"},
		{"upserts twice", func(d *Delta) { d.Upsert = append(d.Upsert, d.Upsert[0]) }, b2, "malformed"},
		{"upsert without spec", func(d *Delta) { d.Upsert[0] = &spec.Object{APIVersion: spec.APIVersion, Kind: spec.KindTool} }, b2, "malformed"},
		{"wrong kind", func(d *Delta) { d.Kind = "Bundle" }, b2, "malformed"},
		{"no target digest", func(d *Delta) { d.To.Digest = Digest{} }, b2, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := good()
			tc.edit(d)
			got, err := OpenDelta(d, tc.held, v)
			if got != nil || Reason(err) != tc.reason {
				t.Fatalf("OpenDelta = %v, %v; want reason %q", got, err, tc.reason)
			}
		})
	}
}

func TestParseDeltaStrict(t *testing.T) {
	d := Diff(mustBuild(t, 1, nil), mustBuild(t, 2, testObjects(t)[:2]))
	b, _ := json.Marshal(d)
	if _, err := ParseDelta(b); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		strings.Replace(string(b), `"from":`, `"form":1,"from":`, 1),
		string(b) + "{}",
		`{"from":{"revision":"x"}}`,
		``,
	} {
		if _, err := ParseDelta([]byte(in)); Reason(err) != "malformed" {
			t.Errorf("ParseDelta(%.40q) = %v, want malformed", in, err)
		}
	}
}

// TestDeltaSizeOneToolIn10k is the fleet-mode budget: changing one tool
// of 10,000 ships less than 16 KB.
func TestDeltaSizeOneToolIn10k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 tools")
	}
	objs := bigConfig(t)
	from := mustBuild(t, 100, objs)
	ref := spec.Ref{Kind: spec.KindTool, Namespace: "tenant-07", Name: "tool-04567"}
	to := mustBuild(t, 101, withToolDescription(objs, ref, "Changed."))
	s, v := testKey(t)
	d := Diff(from, to)
	d.Signature = mustSign(t, to.Bytes(), s)
	wire, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 tools: bundle %d bytes; one-tool delta %d bytes", len(from.Bytes()), len(wire))
	if len(wire) >= 16<<10 {
		t.Fatalf("one-tool delta is %d bytes, want < 16 KB", len(wire))
	}
	got, err := ParseDelta(wire)
	if err != nil {
		t.Fatal(err)
	}
	next, err := OpenDelta(got, from, v)
	if err != nil || next.Digest() != to.Digest() {
		t.Fatalf("OpenDelta = %v", err)
	}
	if len(got.Upsert) != 1 || got.Upsert[0].Ref() != ref {
		t.Fatalf("delta upserts %d objects", len(got.Upsert))
	}
}
