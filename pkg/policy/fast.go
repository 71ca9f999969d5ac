package policy

import (
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
)

// The fast path evaluates the expression shapes policies are made of —
// attribute reads, ==, !=, ordering, in, has(), &&, ||, !, ?:, size,
// startsWith/endsWith/contains and matches with a constant pattern — over
// the Input's Go fields, without boxing anything, so a typical policy costs
// no allocation. It keeps CEL's semantics (heterogeneous equality, error
// absorption by && and ||, cross-type numeric ordering), which the
// differential fuzz test FuzzFastPath checks against cel-go. It answers
// only true or false: a rule whose evaluation fails is evaluated again on
// cel-go, so errors are always cel-go's, and a value it does not handle
// (a string longer than Limits.MaxString, a list longer than MaxList,
// container equality, a Go type claims do not normally hold) makes it
// bail out to cel-go as well.

type kind uint8

const (
	kErr kind = iota
	kBail
	kBool
	kString
	kInt
	kUint
	kDouble
	kNull
	kList
	kMap
)

// val is a fast-path value. Lists and maps point into the Input; nothing
// is copied or boxed.
type val struct {
	k kind
	b bool
	s string
	i int64
	u uint64
	f float64
	// Lists: exactly one of ls, la, lc is set (or none for an empty list).
	ls []string
	la []any
	lc []val
	// Maps: hm or mm (or neither for an empty map).
	hm   Headers
	mm   map[string]any
	isHM bool
}

var (
	vErr   = val{k: kErr}
	vBail  = val{k: kBail}
	vTrue  = val{k: kBool, b: true}
	vFalse = val{k: kBool}
)

func boolVal(b bool) val {
	if b {
		return vTrue
	}
	return vFalse
}

// node is one compiled expression node.
type node interface {
	eval(in *Input) val
}

// fastCompiler turns a checked AST into nodes.
type fastCompiler struct {
	a      *ast.AST
	limits Limits
}

// compileFast returns the fast-path plan of a checked expression, or nil
// when some part of it is outside the fast path's shapes.
func compileFast(a *ast.AST, l Limits) node {
	fc := &fastCompiler{a: a, limits: l}
	n, ok := fc.expr(a.Expr())
	if !ok {
		return nil
	}
	return n
}

func (fc *fastCompiler) expr(e ast.Expr) (node, bool) {
	if ref, ok := fc.a.ReferenceMap()[e.ID()]; ok && ref.Name != "" && e.Kind() != ast.CallKind {
		id, ok := varByName(ref.Name)
		if !ok {
			return nil, false
		}
		return &varNode{id: id, maxStr: fc.limits.MaxString, maxList: fc.limits.MaxList}, true
	}
	switch e.Kind() {
	case ast.LiteralKind:
		v, ok := literal(e.AsLiteral())
		if !ok {
			return nil, false
		}
		return &constNode{v: v}, true
	case ast.ListKind:
		l := e.AsList()
		if len(l.OptionalIndices()) > 0 {
			return nil, false
		}
		elems := make([]val, 0, l.Size())
		for _, x := range l.Elements() {
			if x.Kind() != ast.LiteralKind {
				return nil, false
			}
			v, ok := literal(x.AsLiteral())
			if !ok {
				return nil, false
			}
			elems = append(elems, v)
		}
		return &constNode{v: val{k: kList, lc: elems}}, true
	case ast.SelectKind:
		s := e.AsSelect()
		op, ok := fc.expr(s.Operand())
		if !ok {
			return nil, false
		}
		if s.IsTestOnly() {
			return &hasNode{operand: op, field: s.FieldName()}, true
		}
		return &indexNode{operand: op, key: &constNode{v: val{k: kString, s: s.FieldName()}}, maxStr: fc.limits.MaxString, maxList: fc.limits.MaxList}, true
	case ast.CallKind:
		return fc.call(e)
	}
	return nil, false
}

func literal(v any) (val, bool) {
	switch x := v.(type) {
	case types.Bool:
		return boolVal(bool(x)), true
	case types.String:
		return val{k: kString, s: string(x)}, true
	case types.Int:
		return val{k: kInt, i: int64(x)}, true
	case types.Uint:
		return val{k: kUint, u: uint64(x)}, true
	case types.Double:
		return val{k: kDouble, f: float64(x)}, true
	case types.Null:
		return val{k: kNull}, true
	}
	return val{}, false
}

func (fc *fastCompiler) call(e ast.Expr) (node, bool) {
	c := e.AsCall()
	var args []node
	if c.IsMemberFunction() {
		t, ok := fc.expr(c.Target())
		if !ok {
			return nil, false
		}
		args = append(args, t)
	}
	for _, x := range c.Args() {
		n, ok := fc.expr(x)
		if !ok {
			return nil, false
		}
		args = append(args, n)
	}
	fn := c.FunctionName()
	switch {
	case fn == operators.LogicalAnd && len(args) == 2:
		return &andNode{l: args[0], r: args[1]}, true
	case fn == operators.LogicalOr && len(args) == 2:
		return &orNode{l: args[0], r: args[1]}, true
	case fn == operators.LogicalNot && len(args) == 1:
		return &notNode{x: args[0]}, true
	case fn == operators.Conditional && len(args) == 3:
		return &condNode{c: args[0], t: args[1], f: args[2]}, true
	case fn == operators.Equals && len(args) == 2:
		return &eqNode{l: args[0], r: args[1]}, true
	case fn == operators.NotEquals && len(args) == 2:
		return &eqNode{l: args[0], r: args[1], neg: true}, true
	case fn == operators.In && len(args) == 2:
		if c, ok := args[1].(*constNode); ok && c.v.k == kList && len(c.v.lc) == 0 {
			// cel-go's OptOptimize folds "x in []" to false without
			// evaluating x, even when x would fail; do the same.
			return &constNode{v: vFalse}, true
		}
		return &inNode{elem: args[0], coll: args[1], maxStr: fc.limits.MaxString}, true
	case fn == operators.Index && len(args) == 2:
		return &indexNode{operand: args[0], key: args[1], maxStr: fc.limits.MaxString, maxList: fc.limits.MaxList}, true
	case (fn == operators.Less || fn == operators.LessEquals || fn == operators.Greater || fn == operators.GreaterEquals) && len(args) == 2:
		return &cmpNode{op: fn, l: args[0], r: args[1]}, true
	case fn == overloads.Size && len(args) == 1:
		return &sizeNode{x: args[0]}, true
	case (fn == overloads.StartsWith || fn == overloads.EndsWith || fn == overloads.Contains) && len(args) == 2 && c.IsMemberFunction():
		return &strNode{fn: fn, t: args[0], a: args[1]}, true
	case fn == overloads.Matches && len(args) == 2:
		pat, ok := constString(c.Args()[len(c.Args())-1])
		if !ok {
			return nil, false
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, false
		}
		return &matchNode{t: args[0], re: re}, true
	}
	return nil, false
}

// ---------------------------------------------------------------- leaves

type constNode struct{ v val }

func (n *constNode) eval(*Input) val { return n.v }

type varNode struct {
	id      varID
	maxStr  uint64
	maxList uint64
}

func (n *varNode) str(s string) val {
	if uint64(len(s)) > n.maxStr {
		return vBail
	}
	return val{k: kString, s: s}
}

func (n *varNode) list(l []string) val {
	if uint64(len(l)) > n.maxList {
		return vBail
	}
	return val{k: kList, ls: l}
}

func (n *varNode) eval(in *Input) val {
	switch n.id {
	case vRequestMethod:
		return n.str(in.Method)
	case vRequestPath:
		return n.str(in.Path)
	case vRequestHost:
		return n.str(in.Host)
	case vRequestHeaders:
		return val{k: kMap, hm: in.Headers, isHM: true}
	case vSourceIP:
		return n.str(in.SourceIP)
	case vMCPArguments:
		return val{k: kMap, mm: in.Arguments}
	case vToolName:
		return n.str(in.target().Tool)
	case vToolTenant:
		return n.str(in.target().Tenant)
	case vOperationName:
		return n.str(in.target().Operation)
	}
	c := in.caller()
	switch n.id {
	case vCallerTenant:
		return n.str(c.Tenant)
	case vCallerConsumer:
		return n.str(c.Consumer)
	case vCallerSubject:
		return n.str(c.Subject)
	case vCallerIssuer:
		return n.str(c.Issuer)
	case vCallerClientID:
		return n.str(c.ClientID)
	case vCallerMethod:
		return n.str(c.Method)
	case vCallerAdmin:
		return boolVal(c.Admin)
	case vCallerClaims:
		return val{k: kMap, mm: c.Claims}
	case vCallerScopes:
		return n.list(c.Scopes)
	case vCallerGroups:
		return n.list(c.Groups)
	case vCallerAudiences:
		return n.list(c.Audiences)
	}
	return vBail
}

// dynVal converts a JSON value (a claim, an argument) as the CEL path's
// adapter does; a type that adapter would treat differently bails.
func dynVal(x any, maxStr, maxList uint64) val {
	switch v := x.(type) {
	case string:
		if uint64(len(v)) > maxStr {
			return vBail
		}
		return val{k: kString, s: v}
	case bool:
		return boolVal(v)
	case float64:
		return val{k: kDouble, f: v}
	case json.Number:
		f, ok := jsonNumber(v)
		if !ok {
			return vErr
		}
		return val{k: kDouble, f: f}
	case int:
		return val{k: kInt, i: int64(v)}
	case int64:
		return val{k: kInt, i: v}
	case nil:
		return val{k: kNull}
	case []any:
		if uint64(len(v)) > maxList {
			return vBail
		}
		return val{k: kList, la: v}
	case []string:
		if uint64(len(v)) > maxList {
			return vBail
		}
		return val{k: kList, ls: v}
	case map[string]any:
		return val{k: kMap, mm: v}
	}
	return vBail
}

// ---------------------------------------------------------------- access

// indexNode is m[k], m.k and l[i].
type indexNode struct {
	operand, key node
	maxStr       uint64
	maxList      uint64
}

func (n *indexNode) eval(in *Input) val {
	m := n.operand.eval(in)
	if m.k <= kBail {
		return m
	}
	k := n.key.eval(in)
	if k.k <= kBail {
		return k
	}
	switch m.k {
	case kMap:
		if k.k != kString {
			return vBail
		}
		if m.isHM {
			if m.hm == nil {
				return vErr
			}
			s, ok := m.hm.Header(k.s)
			if !ok {
				return vErr
			}
			if uint64(len(s)) > n.maxStr {
				return vBail
			}
			return val{k: kString, s: s}
		}
		x, ok := m.mm[k.s]
		if !ok {
			return vErr
		}
		return dynVal(x, n.maxStr, n.maxList)
	case kList:
		if k.k != kInt {
			return vBail
		}
		i := k.i
		switch {
		case m.ls != nil:
			if i < 0 || i >= int64(len(m.ls)) {
				return vErr
			}
			return dynVal(m.ls[i], n.maxStr, n.maxList)
		case m.la != nil:
			if i < 0 || i >= int64(len(m.la)) {
				return vErr
			}
			return dynVal(m.la[i], n.maxStr, n.maxList)
		case m.lc != nil:
			if i < 0 || i >= int64(len(m.lc)) {
				return vErr
			}
			return m.lc[i]
		}
		return vErr
	}
	return vErr
}

// hasNode is has(m.f). cel-go resolves m as usual (a missing key on the
// way is an error) and tests the last field in presence mode: false when m
// has no such key or is a value without fields, an error on a list.
type hasNode struct {
	operand node
	field   string
}

func (n *hasNode) eval(in *Input) val {
	m := n.operand.eval(in)
	if m.k <= kBail {
		return m
	}
	switch m.k {
	case kMap:
		if m.isHM {
			if m.hm == nil {
				return vFalse
			}
			_, ok := m.hm.Header(n.field)
			return boolVal(ok)
		}
		_, ok := m.mm[n.field]
		return boolVal(ok)
	case kList:
		return vErr
	}
	return vFalse
}

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
