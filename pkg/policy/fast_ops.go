package policy

import (
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
)

// The fast path's operators and functions, each following cel-go's
// semantics for the value kinds it meets.

// ---------------------------------------------------------------- logic

type andNode struct{ l, r node }

func (n *andNode) eval(in *Input) val {
	l := n.l.eval(in)
	if l.k == kBool && !l.b {
		return vFalse
	}
	if l.k == kBail {
		return vBail
	}
	r := n.r.eval(in)
	if r.k == kBool && !r.b {
		return vFalse
	}
	if r.k == kBail {
		return vBail
	}
	if l.k == kBool && r.k == kBool {
		return vTrue
	}
	return vErr
}

type orNode struct{ l, r node }

func (n *orNode) eval(in *Input) val {
	l := n.l.eval(in)
	if l.k == kBool && l.b {
		return vTrue
	}
	if l.k == kBail {
		return vBail
	}
	r := n.r.eval(in)
	if r.k == kBool && r.b {
		return vTrue
	}
	if r.k == kBail {
		return vBail
	}
	if l.k == kBool && r.k == kBool {
		return vFalse
	}
	return vErr
}

type notNode struct{ x node }

func (n *notNode) eval(in *Input) val {
	x := n.x.eval(in)
	if x.k == kBool {
		return boolVal(!x.b)
	}
	if x.k == kBail {
		return vBail
	}
	return vErr
}

type condNode struct{ c, t, f node }

func (n *condNode) eval(in *Input) val {
	c := n.c.eval(in)
	switch {
	case c.k == kBool && c.b:
		return n.t.eval(in)
	case c.k == kBool:
		return n.f.eval(in)
	case c.k == kBail:
		return vBail
	}
	return vErr
}

// ---------------------------------------------------------------- comparison

type eqNode struct {
	l, r node
	neg  bool
}

func (n *eqNode) eval(in *Input) val {
	l := n.l.eval(in)
	if l.k <= kBail {
		return l
	}
	r := n.r.eval(in)
	if r.k <= kBail {
		return r
	}
	eq, ok := equal(l, r)
	if !ok {
		return vBail
	}
	return boolVal(eq != n.neg)
}

func isNum(v val) bool { return v.k == kInt || v.k == kUint || v.k == kDouble }

// equal is CEL's heterogeneous equality for scalars; ok is false when both
// sides are containers (deep equality is left to cel-go).
func equal(a, b val) (eq, ok bool) {
	switch {
	case a.k == kString && b.k == kString:
		return a.s == b.s, true
	case a.k == kBool && b.k == kBool:
		return a.b == b.b, true
	case a.k == kNull && b.k == kNull:
		return true, true
	case isNum(a) && isNum(b):
		return numEqual(a, b), true
	case (a.k == kList || a.k == kMap) && (b.k == kList || b.k == kMap):
		return false, false
	}
	return false, true
}

func numEqual(a, b val) bool {
	if (a.k == kDouble && math.IsNaN(a.f)) || (b.k == kDouble && math.IsNaN(b.f)) {
		return false
	}
	c, _ := numCompare(a, b)
	return c == 0
}

// numCompare orders two numbers as cel-go's compare.go does.
func numCompare(a, b val) (int, bool) {
	if (a.k == kDouble && math.IsNaN(a.f)) || (b.k == kDouble && math.IsNaN(b.f)) {
		return 0, false
	}
	switch a.k {
	case kInt:
		switch b.k {
		case kInt:
			return cmp3(a.i < b.i, a.i > b.i), true
		case kUint:
			return cmpIntUint(a.i, b.u), true
		case kDouble:
			return -cmpDoubleInt(b.f, a.i), true
		}
	case kUint:
		switch b.k {
		case kInt:
			return -cmpIntUint(b.i, a.u), true
		case kUint:
			return cmp3(a.u < b.u, a.u > b.u), true
		case kDouble:
			return -cmpDoubleUint(b.f, a.u), true
		}
	case kDouble:
		switch b.k {
		case kInt:
			return cmpDoubleInt(a.f, b.i), true
		case kUint:
			return cmpDoubleUint(a.f, b.u), true
		case kDouble:
			return cmp3(a.f < b.f, a.f > b.f), true
		}
	}
	return 0, false
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

func cmpDoubleInt(d float64, i int64) int {
	if d < math.MinInt64 {
		return -1
	}
	if d > math.MaxInt64 {
		return 1
	}
	return cmp3(d < float64(i), d > float64(i))
}

func cmpDoubleUint(d float64, u uint64) int {
	if d < 0 {
		return -1
	}
	if d > math.MaxUint64 {
		return 1
	}
	return cmp3(d < float64(u), d > float64(u))
}

// cmpIntUint mirrors cel-go's compareIntUint, including its wrap-around.
func cmpIntUint(i int64, u uint64) int {
	if i < 0 || u > math.MaxInt64 {
		return -1
	}
	d := i - int64(u)
	return cmp3(d < 0, d > 0)
}

type cmpNode struct {
	op   string
	l, r node
}

func (n *cmpNode) eval(in *Input) val {
	l := n.l.eval(in)
	if l.k <= kBail {
		return l
	}
	r := n.r.eval(in)
	if r.k <= kBail {
		return r
	}
	var c int
	switch {
	case l.k == kString && r.k == kString:
		c = strings.Compare(l.s, r.s)
	case l.k == kBool && r.k == kBool:
		c = cmp3(!l.b && r.b, l.b && !r.b)
	case isNum(l) && isNum(r):
		var ok bool
		if c, ok = numCompare(l, r); !ok {
			return vErr
		}
	default:
		return vErr
	}
	switch n.op {
	case operators.Less:
		return boolVal(c < 0)
	case operators.LessEquals:
		return boolVal(c <= 0)
	case operators.Greater:
		return boolVal(c > 0)
	}
	return boolVal(c >= 0)
}

// inNode is e in list and k in map.
type inNode struct {
	elem, coll node
	maxStr     uint64
}

func (n *inNode) eval(in *Input) val {
	e := n.elem.eval(in)
	if e.k <= kBail {
		return e
	}
	c := n.coll.eval(in)
	if c.k <= kBail {
		return c
	}
	switch c.k {
	case kMap:
		if e.k != kString {
			return vBail
		}
		if c.isHM {
			if c.hm == nil {
				return vFalse
			}
			_, ok := c.hm.Header(e.s)
			return boolVal(ok)
		}
		_, ok := c.mm[e.s]
		return boolVal(ok)
	case kList:
		if e.k == kList || e.k == kMap {
			return vBail
		}
		for _, s := range c.ls {
			if e.k == kString && e.s == s {
				return vTrue
			}
		}
		for _, x := range c.la {
			v := dynVal(x, n.maxStr, math.MaxUint64)
			if v.k <= kBail {
				return vBail
			}
			eq, ok := equal(e, v)
			if !ok {
				return vBail
			}
			if eq {
				return vTrue
			}
		}
		for _, v := range c.lc {
			if eq, _ := equal(e, v); eq {
				return vTrue
			}
		}
		return vFalse
	}
	return vErr
}

// ---------------------------------------------------------------- functions

type sizeNode struct{ x node }

func (n *sizeNode) eval(in *Input) val {
	x := n.x.eval(in)
	switch x.k {
	case kErr, kBail:
		return x
	case kString:
		return val{k: kInt, i: int64(utf8.RuneCountInString(x.s))}
	case kList:
		return val{k: kInt, i: int64(len(x.ls) + len(x.la) + len(x.lc))}
	case kMap:
		if x.isHM {
			if x.hm == nil {
				return val{k: kInt}
			}
			return val{k: kInt, i: int64(x.hm.Len())}
		}
		return val{k: kInt, i: int64(len(x.mm))}
	}
	return vErr
}

type strNode struct {
	fn   string
	t, a node
}

func (n *strNode) eval(in *Input) val {
	t := n.t.eval(in)
	if t.k <= kBail {
		return t
	}
	a := n.a.eval(in)
	if a.k <= kBail {
		return a
	}
	if t.k != kString || a.k != kString {
		return vErr
	}
	switch n.fn {
	case overloads.StartsWith:
		return boolVal(strings.HasPrefix(t.s, a.s))
	case overloads.EndsWith:
		return boolVal(strings.HasSuffix(t.s, a.s))
	}
	return boolVal(strings.Contains(t.s, a.s))
}

type matchNode struct {
	t  node
	re *regexp.Regexp
}

func (n *matchNode) eval(in *Input) val {
	t := n.t.eval(in)
	if t.k <= kBail {
		return t
	}
	if t.k != kString {
		return vErr
	}
	return boolVal(n.re.MatchString(t.s))
}
