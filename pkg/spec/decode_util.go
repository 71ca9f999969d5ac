package spec

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/goccy/go-yaml/ast"
)

// entry is one key/value of a mapping; merged entries come from `<<:`.
type entry struct {
	mv     *ast.MappingValueNode
	merged bool
}

// entryList is a mapping's key/values: its own when it has no merge keys
// (the common case, without copying), else the merged list.
type entryList struct {
	plain  []*ast.MappingValueNode
	merged []entry
}

func (l entryList) len() int {
	if l.merged != nil {
		return len(l.merged)
	}
	return len(l.plain)
}

func (l entryList) at(i int) entry {
	if l.merged != nil {
		return l.merged[i]
	}
	return entry{mv: l.plain[i]}
}

// entries lists a mapping's key/values: explicit ones first, then those
// brought in by merge keys (which explicit keys override). Every merged
// mapping is expanded once, so cycles and diamonds cost nothing extra.
func (d *decoder) entries(n ast.Node) (entryList, bool) {
	values, ok := mappingValues(n)
	if !ok {
		return entryList{}, false
	}
	hasMerge := false
	for _, mv := range values {
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			hasMerge = true
			break
		}
	}
	if !hasMerge {
		return entryList{plain: values}, true
	}
	out := make([]entry, 0, len(values))
	var merges []*ast.MappingValueNode
	for _, mv := range values {
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			merges = append(merges, mv)
			continue
		}
		out = append(out, entry{mv: mv})
	}
	d.expandMerges(merges, &out, map[ast.Node]bool{n: true})
	return entryList{merged: out}, true
}

// expandMerges appends the entries that merge keys bring in.
func (d *decoder) expandMerges(merges []*ast.MappingValueNode, out *[]entry, seen map[ast.Node]bool) {
	for len(merges) > 0 {
		var next []*ast.MappingValueNode
		for _, mv := range merges {
			for _, src := range d.ast.mergeSources(mv.Value, 0) {
				if seen[src] {
					continue
				}
				seen[src] = true
				values, ok := mappingValues(src)
				if !ok {
					d.report(mv.Value, "a merge key (<<) needs a mapping or a list of mappings", "")
					continue
				}
				for _, v := range values {
					if _, ok := v.Key.(*ast.MergeKeyNode); ok {
						next = append(next, v)
						continue
					}
					*out = append(*out, entry{mv: v, merged: true})
				}
			}
		}
		merges = next
	}
}

// mappingValues returns the key/values of a mapping node.
func mappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// keyText returns a mapping key as text; false for non-scalar keys.
func keyText(k ast.Node) (string, bool) {
	switch v := k.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.MappingKeyNode:
		return keyText(v.Value)
	case *ast.TagNode:
		return keyText(v.Value)
	case *ast.AnchorNode:
		return keyText(v.Value)
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	case *ast.LiteralNode:
		if v.Value != nil {
			return v.Value.Value, true
		}
	}
	return "", false
}

// scalarString returns n's text when n is a string (or, with anyScalar, any
// scalar such as a !!str-tagged number).
func scalarString(n ast.Node, anyScalar bool) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode, *ast.NullNode:
		if anyScalar {
			return v.GetToken().Value, true
		}
	}
	return "", false
}

// typeError reports a value of the wrong shape at the current path.
func (d *decoder) typeError(n ast.Node, want, hint string) {
	p := d.pathString()
	if p == "" {
		p = "document"
	}
	d.report(n, fmt.Sprintf("wrong type for %s: expected %s, got %s", p, want, describe(n)), hint)
	d.markBad("")
}

// describe names the type of n for messages ("an integer (5)").
func describe(n ast.Node) string {
	short := func(s string) string {
		if len(s) > 40 {
			s = s[:37] + "..."
		}
		return s
	}
	switch v := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.IntegerNode:
		return "an integer (" + short(v.Token.Value) + ")"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number (" + short(v.GetToken().Value) + ")"
	case *ast.BoolNode:
		return "a boolean (" + v.Token.Value + ")"
	case *ast.StringNode:
		return "a string (" + strconv.Quote(short(v.Value)) + ")"
	case *ast.LiteralNode:
		return "a block string"
	case *ast.NullNode:
		return "null"
	}
	return "an unsupported value"
}

func expectedString(t reflect.Type) string {
	switch t {
	case durationType:
		return `a duration such as "5s"`
	case rateType:
		return `a rate such as "100/s"`
	}
	return "a string"
}

// stringHint suggests how to turn a non-string scalar into the string the
// field wants.
func stringHint(n ast.Node, t reflect.Type) string {
	if kv, ok := scalarPair(n); ok {
		// host:port inside [...] within {...} is read as a mapping.
		return fmt.Sprintf("quote it: %q", kv)
	}
	tk := n.GetToken()
	if tk == nil {
		return ""
	}
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		if t == durationType {
			return fmt.Sprintf("add a unit, e.g. %q", tk.Value+"s")
		}
		if t == rateType {
			return fmt.Sprintf("add a unit, e.g. %q", tk.Value+"/s")
		}
		return fmt.Sprintf("quote it: %q", tk.Value)
	case *ast.BoolNode:
		return fmt.Sprintf("quote it: %q", tk.Value)
	}
	return ""
}

// isErrRange reports whether err is strconv's out-of-range error.
func isErrRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// scalarPair returns the text of a one-entry mapping of scalars ("k:v",
// or "k: v" when written with a space): a string with a colon that YAML
// read as a mapping.
func scalarPair(n ast.Node) (string, bool) {
	values, ok := mappingValues(n)
	if !ok || len(values) != 1 {
		return "", false
	}
	k, ok := keyText(values[0].Key)
	if !ok {
		return "", false
	}
	if isNull(values[0].Value) {
		return "", false // "k:" is rather a key missing its value
	}
	v, ok := scalarString(values[0].Value, true)
	if !ok {
		return "", false
	}
	kt, vt := values[0].Key.GetToken(), values[0].Value.GetToken()
	sep := ": "
	if kt != nil && vt != nil && kt.Position != nil && vt.Position != nil &&
		kt.Position.Line == vt.Position.Line && vt.Position.Column == kt.Position.Column+len([]rune(k))+1 {
		sep = ":"
	}
	return k + sep + v, true
}
