package spec

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
)

// generic converts free-form YAML (a JSON Schema) into JSON-shaped Go
// values: map[string]any, []any, string, float64, bool and nil.
func (d *decoder) generic(n ast.Node, depth int) any {
	if depth > maxDepth {
		d.tooDeep(n)
		return nil
	}
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.report(n, "document too large after alias expansion", "")
			d.markBad("")
		}
		return nil
	}
	alias, isAlias := n.(*ast.AliasNode)
	n, forceStr := d.unwrap(n)
	if n == nil {
		return nil
	}
	if isAlias {
		for _, a := range d.active {
			if a == n {
				d.report(alias, "alias refers to a value that contains it", "an alias cannot repeat its own anchor's value inside itself")
				d.markBad("")
				return nil
			}
		}
	}
	if forceStr {
		if s, ok := scalarString(n, true); ok {
			if d.tooLong(n, s) {
				return nil
			}
			return s
		}
	}
	switch n.(type) {
	case *ast.SequenceNode, *ast.MappingNode, *ast.MappingValueNode:
		d.active = append(d.active, n)
		defer func() { d.active = d.active[:len(d.active)-1] }()
	}
	switch v := n.(type) {
	case *ast.NullNode:
		return nil
	case *ast.StringNode:
		if d.tooLong(n, v.Value) {
			return nil
		}
		return v.Value
	case *ast.LiteralNode:
		if v.Value == nil {
			return ""
		}
		if d.tooLong(n, v.Value.Value) {
			return nil
		}
		return v.Value.Value
	case *ast.BoolNode:
		return v.Value
	case *ast.IntegerNode:
		switch x := v.Value.(type) {
		case int64:
			return float64(x)
		case uint64:
			return float64(x)
		}
		return nil
	case *ast.FloatNode:
		return v.Value
	case *ast.InfinityNode, *ast.NanNode:
		d.report(n, "infinity and NaN cannot be represented in JSON", "")
		d.markBad("")
		return nil
	case *ast.SequenceNode:
		out := make([]any, len(v.Values))
		for i, e := range v.Values {
			d.push(pathSeg{index: i})
			out[i] = d.generic(e, depth+1)
			d.pop()
		}
		return out
	case *ast.MappingNode, *ast.MappingValueNode:
		ents, _ := d.entries(n)
		out := make(map[string]any, ents.len())
		for i := 0; i < ents.len(); i++ {
			e := ents.at(i)
			k, ok := keyText(e.mv.Key)
			if !ok {
				d.report(e.mv.Key, "mapping keys must be strings", "")
				continue
			}
			d.push(pathSeg{key: k, index: -1})
			if d.tooLong(e.mv.Key, k) {
				d.pop()
				continue
			}
			if _, dup := out[k]; dup {
				if !e.merged {
					d.report(e.mv.Key, fmt.Sprintf("duplicate key %q", k), "remove one of the two entries")
				}
			} else {
				out[k] = d.generic(e.mv.Value, depth+1)
			}
			d.pop()
		}
		return out
	}
	d.report(n, "unsupported YAML value", "")
	return nil
}
