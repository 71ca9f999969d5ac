package spec

import (
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// fastArena recycles the fast parser's memory from one document to the
// next.
type fastArena struct {
	lines   []fastLine
	strs    []stringBox
	entries []entryBox
	toks    []tokenBox
	maps    []mappingBox
	seqs    []sequenceBox
	mvs     []*ast.MappingValueNode // backing store of mappings' Values
	nodes   []ast.Node              // backing store of sequences' Values

	// Entries and items of the collections being parsed, innermost last.
	mvStack   []*ast.MappingValueNode
	nodeStack []ast.Node

	// The decoder's path, reused from one document to the next (decoding
	// keeps only its rendering).
	path []pathSeg
}

func (a *fastArena) reset() {
	a.lines, a.strs, a.entries, a.toks, a.maps, a.seqs = a.lines[:0], a.strs[:0], a.entries[:0], a.toks[:0], a.maps[:0], a.seqs[:0]
	a.mvs, a.nodes, a.mvStack, a.nodeStack = a.mvs[:0], a.nodes[:0], a.mvStack[:0], a.nodeStack[:0]
}

// grab extends *slab by one element, starting a new array when it is full
// (elements already handed out stay valid in the old one).
func grab[T any](slab *[]T, min int) *T {
	if len(*slab) == cap(*slab) {
		*slab = make([]T, 0, max(min, 2*cap(*slab)))
	}
	*slab = (*slab)[:len(*slab)+1]
	return &(*slab)[len(*slab)-1]
}

// carve copies items into the store and returns them as a stable slice.
func carve[T any](store *[]T, items []T) []T {
	if len(*store)+len(items) > cap(*store) {
		*store = make([]T, 0, max(256, 2*cap(*store), len(items)))
	}
	start := len(*store)
	*store = append(*store, items...)
	return (*store)[start:len(*store):len(*store)]
}

// token builds a token with its position in the arena.
func (a *fastArena) token(typ token.Type, value string, pos token.Position) *token.Token {
	b := grab(&a.toks, 64)
	b.pos = pos
	b.tok = token.Token{Type: typ, Value: value, Origin: value, Position: &b.pos}
	return &b.tok
}

// mapping builds a mapping node from the entries on the stack above base.
func (a *fastArena) mapping(start *token.Token, flow bool, base int) *ast.MappingNode {
	b := grab(&a.maps, 32)
	b.base = ast.BaseNode{}
	b.node = ast.MappingNode{BaseNode: &b.base, Start: start, IsFlowStyle: flow, Values: carve(&a.mvs, a.mvStack[base:])}
	a.mvStack = a.mvStack[:base]
	return &b.node
}

// sequence builds a sequence node from the items on the stack above base.
func (a *fastArena) sequence(start *token.Token, flow bool, base int) *ast.SequenceNode {
	b := grab(&a.seqs, 16)
	b.base = ast.BaseNode{}
	b.node = ast.SequenceNode{BaseNode: &b.base, Start: start, IsFlowStyle: flow, Values: carve(&a.nodes, a.nodeStack[base:])}
	a.nodeStack = a.nodeStack[:base]
	return &b.node
}

type tokenBox struct {
	tok token.Token
	pos token.Position
}

type mappingBox struct {
	node ast.MappingNode
	base ast.BaseNode
}

type sequenceBox struct {
	node ast.SequenceNode
	base ast.BaseNode
}
