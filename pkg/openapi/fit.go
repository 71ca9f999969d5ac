package openapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Input schemas are held to spec.MaxSchemaBytes (an agent reads every
// schema of tools/list; 128 KiB is already ~32k tokens). An operation whose
// input, with the $defs it carries, is larger is not dropped: its schema is
// degraded in steps, measured with spec.SchemaSize after each, until it
// fits:
//
//  1. prose (description, title, examples, $comment, x-*) inside $defs;
//  2. prose everywhere else, except the description of each argument;
//  3. the largest $defs entries become permissive schemas (their type and
//     a note that the schema was elided), largest first; entries nothing
//     refers to any more are removed;
//  4. as a last resort, the largest arguments' schemas become their type
//     and description.
//
// Argument names, types, `required` and `in` placement are never changed,
// so the tool stays callable; the API checks what the schema no longer does.

// elidedNote is the description of a schema the import cut.
const elidedNote = "schema elided by stoa import: too large; see the API's documentation"

// fitInput returns input degraded to fit spec.MaxSchemaBytes and a
// warning saying what was dropped ("" and input itself when it fits).
// input is not modified: its parts may be shared with other operations.
func (f *refForms) fitInput(name string, input map[string]any) (map[string]any, string) {
	limit := spec.MaxSchemaBytes
	if f.limit != 0 {
		limit = f.limit
	}
	if spec.SchemaSize(input, limit) <= limit {
		return input, ""
	}
	var did []string
	out := make(map[string]any, len(input))
	for k, v := range input {
		out[k] = v
	}
	// The original size, without walking the shared $defs entries again
	// (their sizes are kept per document).
	defs, _ := input["$defs"].(map[string]any)
	delete(out, "$defs")
	orig := spec.SchemaSize(out, 64<<20)
	if defs != nil {
		out["$defs"] = defs
		orig += len("$defs") + 6
		for n, d := range defs {
			orig += f.entry(n, d).size
		}
	}
	// size follows the input's size without re-walking it: jsonSize is
	// additive, so a member's change is its own size's change. What
	// decides a step is enough is measured in full (fits).
	size := orig
	fits := func() bool {
		if size > limit {
			return false
		}
		if n := spec.SchemaSize(out, limit); n <= limit {
			size = n
			return true
		}
		size = spec.SchemaSize(out, 64<<20) // the estimate was low
		return false
	}
	// need says whether the input is still too large; each step changes
	// it only once need has said so.
	fit := false
	need := func() bool {
		if !fit {
			fit = fits()
		}
		return !fit
	}

	// 1. Prose inside $defs. Entries are shared by operations, so their
	// stripped forms (and sizes, and references) are kept per document.
	if len(defs) > 0 {
		sd := make(map[string]any, len(defs))
		for n, d := range defs {
			e := f.entry(n, d)
			sd[n] = e.stripped
			size += e.strippedSize - e.size
		}
		defs = sd
		out["$defs"] = defs
		did = append(did, "descriptions, titles and examples inside $defs")
	}

	// 2. Prose in the arguments' schemas, except their own description.
	if need() {
		props, _ := input["properties"].(map[string]any)
		np := make(map[string]any, len(props))
		for n, p := range props {
			np[n] = p
			if ps, ok := p.(map[string]any); ok {
				if s, changed := strip(ps, 0, true); changed {
					np[n] = s
					size += entrySize(n, s) - entrySize(n, ps)
				}
			}
		}
		out["properties"] = np
		if ap, ok := input["additionalProperties"].(map[string]any); ok {
			s := stripSchema(ap, 0, false)
			out["additionalProperties"] = s
			size += entrySize("", s) - entrySize("", ap)
		}
		did = append(did, "descriptions, titles and examples of nested schemas")
	}

	// 3. $defs entries, deepest first (farthest, by references, from the
	// arguments), the largest of a depth first, until it fits: what an
	// agent reads first (the arguments and what they refer to directly)
	// is kept longest.
	if need() && len(defs) > 0 {
		defs = cloneMap(defs)
		out["$defs"] = defs
		sizes := make(map[string]int, len(defs))
		refs := make(map[string][]string, len(defs))
		for n := range defs {
			e := f.info[n]
			sizes[n], refs[n] = e.strippedSize, e.refs
		}
		var roots []string
		for k, v := range out {
			if k != "$defs" {
				roots = defRefs(v, roots)
			}
		}
		var elided []string
		removed := 0
		isElided := map[string]bool{}
		depth := make(map[string]int, len(defs))
		var queue []string
		for {
			queue = refDepths(roots, refs, depth, queue)
			for n := range defs {
				if _, live := depth[n]; !live {
					delete(defs, n)
					size -= sizes[n]
					removed++
				}
			}
			if fit = fits(); fit {
				break
			}
			pick := ""
			for n := range defs {
				if isElided[n] {
					continue
				}
				if pick == "" || depth[n] > depth[pick] || depth[n] == depth[pick] &&
					(sizes[n] > sizes[pick] || sizes[n] == sizes[pick] && n < pick) {
					pick = n
				}
			}
			if pick == "" {
				break
			}
			d, _ := defs[pick].(map[string]any)
			defs[pick] = permissive(d, nil)
			was := sizes[pick]
			sizes[pick] = entrySize(pick, defs[pick])
			size += sizes[pick] - was
			refs[pick] = nil
			isElided[pick] = true
			elided = append(elided, pick)
		}
		if len(defs) == 0 {
			delete(out, "$defs")
			size -= len("$defs") + 6
		}
		kept := elided[:0]
		for _, n := range elided {
			if _, ok := defs[n]; ok {
				kept = append(kept, n)
			}
		}
		msg := fmt.Sprintf("the schemas of %d $defs entr%s (%s; each now a permissive schema of its type)",
			len(kept), plural(len(kept), "y", "ies"), listNames(kept))
		if removed > 0 {
			msg += fmt.Sprintf(" and %d entr%s no longer referenced", removed, plural(removed, "y", "ies"))
		}
		did = append(did, msg)
	}

	// 4. The largest arguments' schemas: type and description kept.
	var cut []string
	if need() {
		props, _ := out["properties"].(map[string]any)
		props = cloneMap(props)
		out["properties"] = props
		names := make([]string, 0, len(props))
		sizes := map[string]int{}
		for n, p := range props {
			names = append(names, n)
			sizes[n] = entrySize(n, p)
		}
		slices.SortFunc(names, func(a, b string) int {
			if sizes[a] != sizes[b] {
				return sizes[b] - sizes[a]
			}
			return strings.Compare(a, b)
		})
		for _, n := range names {
			if size <= limit {
				break
			}
			ps, _ := props[n].(map[string]any)
			of := ps
			if r, ok := ps["$ref"].(string); ok {
				// The argument's type is its entry's.
				d, _ := out["$defs"].(map[string]any)
				if e, ok := d[strings.TrimPrefix(r, "#/$defs/")].(map[string]any); ok {
					of = e
				}
			}
			p := permissive(of, ps["description"])
			if spec.SchemaSize(p, sizes[n]) >= sizes[n]-len(n)-4 {
				continue // already about as small as it gets
			}
			props[n] = p
			cut = append(cut, n)
			if defs, ok := out["$defs"].(map[string]any); ok {
				defs = cloneMap(defs)
				out["$defs"] = defs
				pruneDefs(out, defs)
				if len(defs) == 0 {
					delete(out, "$defs")
				}
			}
			size = spec.SchemaSize(out, 64<<20)
		}
		if len(cut) > 0 {
			did = append(did, fmt.Sprintf("the schemas of argument%s %s (type and description kept)", plural(len(cut), "", "s"), listNames(cut)))
		}
	}

	// size is exact here: measured by fits or, in step 4, in full.
	w := fmt.Sprintf("input schema of %s is %s as JSON, over the %s limit; cut to %s by dropping %s",
		name, sizeText(orig), sizeText(limit), sizeText(size), strings.Join(did, ", then "))
	if size > limit {
		w += "; still too large: split the operation, or write its input by hand"
	}
	return out, w
}

// defInfo is what fitInput needs of a $defs entry, kept per document.
type defInfo struct {
	size         int // entrySize of the entry
	stripped     any // the entry without prose
	strippedSize int
	refs         []string // the $defs entries it refers to
}

// entry returns the defInfo of the $defs entry name (schema d).
func (f *refForms) entry(name string, d any) *defInfo {
	if e, ok := f.info[name]; ok {
		return e
	}
	e := &defInfo{size: entrySize(name, d), stripped: d}
	if m, ok := d.(map[string]any); ok {
		e.stripped = stripSchema(m, 0, false)
	}
	e.strippedSize = entrySize(name, e.stripped)
	e.refs = defRefs(e.stripped, nil)
	if f.info == nil {
		f.info = map[string]*defInfo{}
	}
	f.info[name] = e
	return e
}

// isProse reports keywords that document a schema without constraining it.
func isProse(k string) bool {
	switch k {
	case "description", "title", "examples", "example", "externalDocs", "$comment":
		return true
	}
	return strings.HasPrefix(k, "x-")
}

// schemaMapKeys hold maps of names to schemas; schemaKeys a schema or a
// list of schemas. Other keywords hold data, left as they are (a property
// named "description" is not prose).
var (
	schemaMapKeys = map[string]bool{"properties": true, "patternProperties": true, "$defs": true,
		"definitions": true, "dependentSchemas": true}
	schemaKeys = map[string]bool{"items": true, "prefixItems": true, "contains": true, "additionalProperties": true,
		"propertyNames": true, "allOf": true, "anyOf": true, "oneOf": true, "not": true, "if": true, "then": true,
		"else": true, "unevaluatedItems": true, "unevaluatedProperties": true, "additionalItems": true}
)

// stripSchema returns the schema m without prose, at every depth (at the
// top, keepDesc keeps its own description). Parts without prose are
// shared with m, not copied: the stripped forms of a document's $defs
// stay about as large as the parts of them that had prose.
func stripSchema(m map[string]any, depth int, keepDesc bool) map[string]any {
	out, _ := strip(m, depth, keepDesc)
	return out
}

// strip is stripSchema, also saying whether anything was dropped (when
// not, it returns m itself).
func strip(m map[string]any, depth int, keepDesc bool) (map[string]any, bool) {
	type change struct {
		k string
		v any
	}
	var changes []change
	drop := false
	for k, v := range m {
		if isProse(k) && !(keepDesc && k == "description") {
			drop = true
			continue
		}
		if depth > maxSchemaDepth {
			continue
		}
		switch {
		case schemaMapKeys[k]:
			if vm, ok := v.(map[string]any); ok {
				var nm map[string]any
				for n, sub := range vm {
					sm, ok := sub.(map[string]any)
					if !ok {
						continue
					}
					if ns, changed := strip(sm, depth+1, false); changed {
						if nm == nil {
							nm = cloneMap(vm)
						}
						nm[n] = ns
					}
				}
				if nm != nil {
					changes = append(changes, change{k, nm})
				}
			}
		case schemaKeys[k]:
			switch x := v.(type) {
			case map[string]any:
				if ns, changed := strip(x, depth+1, false); changed {
					changes = append(changes, change{k, ns})
				}
			case []any:
				var l []any
				for i, sub := range x {
					sm, ok := sub.(map[string]any)
					if !ok {
						continue
					}
					if ns, changed := strip(sm, depth+1, false); changed {
						if l == nil {
							l = slices.Clone(x)
						}
						l[i] = ns
					}
				}
				if l != nil {
					changes = append(changes, change{k, l})
				}
			}
		}
	}
	if !drop && len(changes) == 0 {
		return m, false
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !isProse(k) || keepDesc && k == "description" {
			out[k] = v
		}
	}
	for _, c := range changes {
		out[c.k] = c.v
	}
	return out, true
}

// permissive is what an elided schema becomes: its type (object when it
// had properties, array when it had items, none when it did not say, as
// for a oneOf), a note, and desc when given (an argument's own
// description, which agents still need).
func permissive(m map[string]any, desc any) map[string]any {
	out := map[string]any{}
	switch t := m["type"].(type) {
	case string, []any:
		out["type"] = t
	default:
		if _, ok := m["properties"]; ok {
			out["type"] = "object"
		} else if _, ok := m["items"]; ok {
			out["type"] = "array"
		}
	}
	if d, ok := desc.(string); ok && d != "" && len(d)+len(elidedNote)+3 > spec.MaxDescriptionBytes {
		out["description"] = d
	} else if ok && d != "" {
		out["description"] = d + " (" + elidedNote + ")"
	} else {
		out["description"] = elidedNote
	}
	if dep, ok := m["deprecated"]; ok {
		out["deprecated"] = dep
	}
	return out
}

// defRefs appends to names the $defs entries v refers to.
func defRefs(v any, names []string) []string {
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 4*maxSchemaDepth {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			if r, ok := x["$ref"].(string); ok {
				if n, ok := strings.CutPrefix(r, "#/$defs/"); ok && !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			for _, e := range x {
				walk(e, depth+1)
			}
		case []any:
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	walk(v, 0)
	return names
}

// refDepths sets depth to the $defs entries reachable from roots, each
// with its distance from them (roots are 0). depth and queue are reused
// across calls (they are cleared), as fitInput calls it once per entry.
func refDepths(roots []string, refs map[string][]string, depth map[string]int, queue []string) []string {
	clear(depth)
	queue = queue[:0]
	for _, n := range roots {
		if _, seen := depth[n]; !seen {
			depth[n] = 0
			queue = append(queue, n)
		}
	}
	for i := 0; i < len(queue); i++ {
		n := queue[i]
		for _, m := range refs[n] {
			if _, seen := depth[m]; !seen {
				depth[m] = depth[n] + 1
				queue = append(queue, m)
			}
		}
	}
	return queue
}

// pruneDefs removes the entries of defs (the $defs of input) that neither
// input outside $defs nor a remaining entry refers to.
func pruneDefs(input, defs map[string]any) {
	var roots []string
	for k, v := range input {
		if k != "$defs" {
			roots = defRefs(v, roots)
		}
	}
	refs := make(map[string][]string, len(defs))
	for n, d := range defs {
		refs[n] = defRefs(d, nil)
	}
	depth := map[string]int{}
	refDepths(roots, refs, depth, nil)
	for n := range defs {
		if _, live := depth[n]; !live {
			delete(defs, n)
		}
	}
}

// entrySize is what the member name: v adds to a map's spec.SchemaSize
// (2+len(map) for the braces and separators, plus for each member its
// quoted name, colon and value): the size of {name: v} less the braces.
func entrySize(name string, v any) int {
	m, _ := v.(map[string]any)
	return spec.SchemaSize(m, 64<<20) + len(name) + 4
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// listNames lists names for a message: the first few, then how many more.
func listNames(names []string) string {
	const show = 5
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sizeText renders a byte count as spec's messages do: "1.2 MiB", "128 KiB".
func sizeText(n int) string {
	trim := func(s string) string { return strings.TrimSuffix(s, ".0") }
	switch {
	case n >= 1<<20:
		return trim(fmt.Sprintf("%.1f", float64(n)/(1<<20))) + " MiB"
	case n >= 1<<10:
		return trim(fmt.Sprintf("%.1f", float64(n)/(1<<10))) + " KiB"
	}
	return fmt.Sprintf("%d bytes", n)
}
