package xdp

import (
	"net/netip"
	"slices"
)

// prefixTable maps canonical prefixes to values and finds the prefixes that
// contain an address with one map probe per distinct prefix length, which
// keeps accept-time checks cheap for long deny and block lists.
type prefixTable[V any] struct {
	m            map[netip.Prefix]V
	lens4, lens6 []int // distinct prefix lengths in use, longest first
}

func (t *prefixTable[V]) set(p netip.Prefix, v V) {
	if t.m == nil {
		t.m = make(map[netip.Prefix]V)
	}
	_, had := t.m[p]
	t.m[p] = v
	if !had {
		t.reindex()
	}
}

func (t *prefixTable[V]) delete(p netip.Prefix) bool {
	if _, ok := t.m[p]; !ok {
		return false
	}
	delete(t.m, p)
	t.reindex()
	return true
}

func (t *prefixTable[V]) len() int { return len(t.m) }

func (t *prefixTable[V]) reindex() {
	t.lens4, t.lens6 = t.lens4[:0], t.lens6[:0]
	for p := range t.m {
		if p.Addr().Is4() {
			t.lens4 = append(t.lens4, p.Bits())
		} else {
			t.lens6 = append(t.lens6, p.Bits())
		}
	}
	for _, l := range []*[]int{&t.lens4, &t.lens6} {
		slices.Sort(*l)
		slices.Reverse(*l)
		*l = slices.Compact(*l)
	}
}

// matches calls fn for every prefix containing a, longest first, until fn
// returns false.
func (t *prefixTable[V]) matches(a netip.Addr, fn func(netip.Prefix, V) bool) {
	if len(t.m) == 0 {
		return
	}
	a = canonicalAddr(a)
	lens := t.lens6
	if a.Is4() {
		lens = t.lens4
	}
	for _, bits := range lens {
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if v, ok := t.m[p]; ok && !fn(p, v) {
			return
		}
	}
}

// contains reports whether any prefix contains a.
func (t *prefixTable[V]) contains(a netip.Addr) bool {
	found := false
	t.matches(a, func(netip.Prefix, V) bool { found = true; return false })
	return found
}
