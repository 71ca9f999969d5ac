package plan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// TestApplyMergesLikeAMap checks Apply's one-pass merge into the sorted
// live set against the map it replaces, over random live sets and change
// lists (creates, updates, deletes of present and absent objects, a ref
// changed twice), and that a live set out of order is still handled.
func TestApplyMergesLikeAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []spec.Kind{spec.KindTenant, spec.KindTool, spec.KindToolSet, spec.KindConsumer}
	obj := func() *spec.Object {
		k := kinds[rng.IntN(len(kinds))]
		o := &spec.Object{APIVersion: spec.APIVersion, Kind: k, Metadata: spec.Metadata{Name: fmt.Sprintf("n%d", rng.IntN(8))}}
		if k.Namespaced() {
			o.Metadata.Namespace = fmt.Sprintf("t%d", rng.IntN(3))
		}
		return o
	}
	for range 2000 {
		by := map[spec.Ref]*spec.Object{}
		for range rng.IntN(30) {
			o := obj()
			by[o.Ref()] = o
		}
		var live []*spec.Object
		for _, o := range by {
			live = append(live, o)
		}
		SortObjects(live)
		var changes []Change
		for range rng.IntN(8) {
			o := obj()
			switch rng.IntN(3) {
			case 0:
				changes = append(changes, Change{Op: Delete, Ref: o.Ref(), Before: by[o.Ref()]})
			case 1:
				changes = append(changes, Change{Op: Update, Ref: o.Ref(), Before: by[o.Ref()], After: o})
			default:
				changes = append(changes, Change{Op: Create, Ref: o.Ref(), After: o})
			}
		}
		want := applyUnsorted(live, changes)
		if got := Apply(live, changes); !slices.Equal(got, want) {
			t.Fatalf("live %v, changes %v:\nmerged %v\nmap    %v", objRefs(live), changes, objRefs(got), objRefs(want))
		}
		shuffled := slices.Clone(live)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := Apply(shuffled, changes); !slices.Equal(got, want) {
			t.Fatalf("live out of order: %v, want %v", objRefs(got), objRefs(want))
		}
	}
}

func objRefs(objs []*spec.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Ref().String())
	}
	return out
}
