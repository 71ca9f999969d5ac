package policy

import (
	"regexp"

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
