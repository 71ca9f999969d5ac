package spec

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// maxDepth bounds nesting (and alias chains) so hostile input cannot
// exhaust the stack.
const maxDepth = 100

// genericBudget bounds the values built for free-form fields (JSON Schemas)
// of a document of n bytes, after alias expansion ("billion laughs"): a
// generous multiple of the size, so legitimate reuse of anchored schemas
// fits but expansion cannot amplify input by more than that factor.
func genericBudget(n int) int {
	return min(max(1<<16, 16*n), 1<<20)
}

// decoder walks one document's AST into Go values, collecting every problem.
type decoder struct {
	doc    *docState
	ast    *docAST
	kind   Kind
	path   []pathSeg
	diags  Diagnostics
	budget int
	deep   bool       // "nesting too deep" was reported
	active []ast.Node // containers being converted by generic, to spot alias cycles
	bad    *[]string  // the object's paths that failed to decode
}

var (
	rateLimitType = reflect.TypeFor[RateLimit]()
	durationType  = reflect.TypeFor[Duration]()
	rateType      = reflect.TypeFor[Rate]()
	quantityType  = reflect.TypeFor[Quantity]()
	anyMapType    = reflect.TypeFor[map[string]any]()
)

// presetter is implemented by types whose absent fields mean something other
// than the zero value (a missing upstream weight is 1, not 0). The decoder
// calls preset on every new value before filling it from YAML.
type presetter interface{ preset() }

// preset makes a missing weight mean 1; an explicit 0 drains the upstream.
func (w *WeightedUpstream) preset() { w.Weight = 1 }

// preset makes a retries block without attempts mean the default 2 tries;
// an explicit 0 disables retries.
func (r *Retries) preset() { r.Attempts = defaultRetryAttempts }

// structInfo maps a struct's JSON field names to field indexes.
type structInfo struct {
	byName map[string]int // json name -> position in names/index
	names  []string
	index  []int
}

var structCache sync.Map // reflect.Type -> *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if v, ok := structCache.Load(t); ok {
		return v.(*structInfo)
	}
	info := &structInfo{byName: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		info.byName[name] = len(info.names)
		info.names = append(info.names, name)
		info.index = append(info.index, i)
	}
	v, _ := structCache.LoadOrStore(t, info)
	return v.(*structInfo)
}

// pathString renders the current path ("spec.operations[1].name").
func (d *decoder) pathString() string {
	return renderPath(d.path)
}

func renderPath(segs []pathSeg) string {
	var b strings.Builder
	for _, s := range segs {
		if s.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
			continue
		}
		b.WriteString(pathKey(s.key))
	}
	return strings.TrimPrefix(b.String(), ".")
}

func (d *decoder) push(s pathSeg) { d.path = append(d.path, s) }
func (d *decoder) pop()           { d.path = d.path[:len(d.path)-1] }

// where names the mapping being decoded, for messages: "Tool spec.auth".
func (d *decoder) where() string {
	p := d.pathString()
	k := string(d.kind)
	if k == "" {
		k = "object"
	}
	if p == "" {
		return k
	}
	return k + " " + p
}

// report adds an error at node n (its key when key is set).
func (d *decoder) report(n ast.Node, msg, hint string) {
	line, col := d.doc.pos(nodeStart(n))
	line, col, text := d.doc.file.clamp(line, col)
	d.diags = append(d.diags, &Diagnostic{
		File: d.doc.file.name, Line: line, Column: col, SourceLine: text,
		Path: d.pathString(), Message: msg, Hint: hint, Severity: SeverityError,
	})
}

// markBad records that the current path failed to decode.
func (d *decoder) markBad(extra string) {
	p := d.pathString() + extra
	if d.bad != nil {
		*d.bad = append(*d.bad, strings.TrimPrefix(p, "."))
	}
}

// unwrap strips anchors and tags and follows aliases. It reports whether a
// !!str tag forces the value to be a string.
func (d *decoder) unwrap(n ast.Node) (ast.Node, bool) {
	forceStr := false
	for i := 0; ; i++ {
		if i > maxDepth {
			d.tooDeep(n)
			return nil, false
		}
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			if v.Start != nil && (v.Start.Value == "!!str" || v.Start.Value == "tag:yaml.org,2002:str") {
				forceStr = true
			}
			n = v.Value
		case *ast.AliasNode:
			name := ""
			if v.Value != nil {
				name = v.Value.String()
			}
			t := d.ast.anchor(name)
			if t == nil {
				d.report(v, fmt.Sprintf("unknown alias *%s", name), "define the anchor &"+name+" earlier in the same document")
				d.markBad("")
				return nil, false
			}
			n = t
		default:
			return n, forceStr
		}
	}
}

// tooLong reports a string over MaxStringBytes at n.
func (d *decoder) tooLong(n ast.Node, s string) bool {
	if len(s) <= MaxStringBytes {
		return false
	}
	d.report(n, fmt.Sprintf("string too long: %s; at most %s are allowed", sizeText(int64(len(s))), sizeText(MaxStringBytes)),
		"specs hold configuration: keep large documents in files the spec points at")
	d.markBad("")
	return true
}

// tooDeep reports excessive nesting once per document.
func (d *decoder) tooDeep(n ast.Node) {
	if !d.deep {
		d.deep = true
		d.report(n, "nesting too deep (an alias cycle?)", "")
		d.markBad("")
	}
}

// value decodes n into v, reporting problems at their position.
func (d *decoder) value(n ast.Node, v reflect.Value, depth int) {
	if depth > maxDepth {
		d.tooDeep(n)
		return
	}
	orig := n
	n, forceStr := d.unwrap(n)
	if n == nil {
		return
	}
	if _, null := n.(*ast.NullNode); null && !forceStr {
		return
	}
	t := v.Type()
	switch t {
	case rateLimitType:
		if s, ok := scalarString(n, forceStr); ok {
			// The short form is the mapping's rate: report it there, as
			// for {rate: ...}.
			d.push(pathSeg{key: "rate", index: -1})
			r, ok := d.rate(n, s)
			d.pop()
			if ok {
				setValue(v, RateLimit{Rate: r})
			}
			return
		}
		if _, ok := n.(*ast.MappingNode); !ok {
			d.typeError(n, "a rate such as 100/s or a mapping {rate: 100/s, burst: 20}", "")
			return
		}
	case durationType:
		s, ok := scalarString(n, forceStr)
		if !ok {
			d.typeError(n, expectedString(t), stringHint(n, t))
			return
		}
		if s == "" || d.tooLong(n, s) {
			return
		}
		dur, err := NewDuration(s)
		if err != nil {
			d.report(n, fmt.Sprintf("invalid duration %q", s), durationHint)
			d.markBad("")
			return
		}
		setValue(v, dur)
		return
	case quantityType:
		// A byte count may be written as a plain integer.
		s, ok := scalarString(n, true)
		if _, isBool := n.(*ast.BoolNode); !ok || isBool {
			d.typeError(n, "a byte quantity such as 512Mi", "")
			return
		}
		if s == "" || d.tooLong(n, s) {
			return
		}
		q, err := NewQuantity(s)
		if err != nil {
			d.report(n, strings.Replace(err.Error(), "invalid quantity", "invalid byte quantity", 1), quantityHint)
			d.markBad("")
			return
		}
		setValue(v, q)
		return
	case rateType:
		s, ok := scalarString(n, forceStr)
		if !ok {
			d.typeError(n, expectedString(t), stringHint(n, t))
			return
		}
		if r, ok := d.rate(n, s); ok {
			setValue(v, r)
		}
		return
	case anyMapType:
		if _, ok := n.(*ast.MappingNode); !ok {
			d.typeError(n, "a mapping (a JSON Schema object)", "")
			return
		}
		if m, ok := d.generic(n, depth+1).(map[string]any); ok {
			v.Set(reflect.ValueOf(m))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := reflect.New(t.Elem())
		if p, ok := nv.Interface().(presetter); ok {
			p.preset()
		}
		// The node as written: a !!str tag must reach the pointed-to
		// value's check.
		d.value(orig, nv.Elem(), depth+1)
		v.Set(nv)
	case reflect.Struct:
		d.structValue(n, v, depth)
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			hint := ""
			if s, ok := scalarString(n, true); ok {
				hint = "write a list, e.g. [" + s + "]"
			}
			d.typeError(n, "a list", hint)
			return
		}
		out := reflect.MakeSlice(t, len(seq.Values), len(seq.Values))
		for i, e := range seq.Values {
			d.push(pathSeg{index: i})
			el := out.Index(i)
			if p, ok := el.Addr().Interface().(presetter); ok {
				p.preset()
			}
			d.value(e, el, depth+1)
			d.pop()
		}
		v.Set(out)
	case reflect.Map:
		d.mapValue(n, v, depth)
	case reflect.String:
		s, ok := scalarString(n, forceStr)
		if !ok {
			d.typeError(n, expectedString(t), stringHint(n, t))
			return
		}
		if d.tooLong(n, s) {
			return
		}
		v.SetString(s)
	case reflect.Int, reflect.Int64, reflect.Int32:
		in, ok := n.(*ast.IntegerNode)
		if !ok || forceStr {
			hint := ""
			if s, ok := n.(*ast.StringNode); ok {
				_, err := strconv.ParseInt(s.Value, 10, 64)
				if s.Token != nil && s.Token.Type == token.StringType && isErrRange(err) {
					d.report(n, fmt.Sprintf("integer %s is too large", s.Value), "")
					d.markBad("")
					return
				}
				if err == nil {
					hint = "remove the quotes: " + s.Value
				}
			}
			d.typeError(n, "an integer", hint)
			return
		}
		var i int64
		switch x := in.Value.(type) {
		case int64:
			i = x
		case uint64:
			if x > math.MaxInt64 {
				d.report(n, fmt.Sprintf("integer %s is too large", in.Token.Value), "")
				d.markBad("")
				return
			}
			i = int64(x)
		}
		if v.OverflowInt(i) {
			d.report(n, fmt.Sprintf("integer %s is too large", in.Token.Value), "")
			d.markBad("")
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		switch x := n.(type) {
		case *ast.FloatNode:
			f = x.Value
		case *ast.IntegerNode:
			switch i := x.Value.(type) {
			case int64:
				f = float64(i)
			case uint64:
				f = float64(i)
			}
		case *ast.InfinityNode, *ast.NanNode:
			d.report(n, fmt.Sprintf("wrong value for %s: infinity and NaN are not numbers here", d.pathString()), "write a number such as 0.5")
			d.markBad("")
			return
		case *ast.StringNode:
			// goccy reads some YAML 1.2 floats (1e-3) as plain strings.
			g, err := strconv.ParseFloat(x.Value, 64)
			plain := x.Token != nil && x.Token.Type == token.StringType
			if err == nil && plain && !forceStr && !math.IsInf(g, 0) && !math.IsNaN(g) {
				f = g
				break
			}
			hint := ""
			if err == nil && !plain {
				hint = "remove the quotes: " + x.Value
			}
			d.typeError(n, "a number", hint)
			return
		default:
			d.typeError(n, "a number", "")
			return
		}
		if forceStr {
			d.typeError(n, "a number", "")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok || forceStr {
			hint := ""
			if s, ok := n.(*ast.StringNode); ok {
				switch strings.ToLower(s.Value) {
				case "true", "false", "yes", "no", "on", "off":
					hint = "write true or false, without quotes"
				}
			}
			d.typeError(n, "a boolean (true or false)", hint)
			return
		}
		v.SetBool(b.Value)
	default:
		d.report(n, fmt.Sprintf("cannot decode into %s", t), "")
	}
}

// setValue stores x in v, through its address when it has one: boxing x
// for reflect.ValueOf would allocate for every duration and rate decoded.
func setValue[T any](v reflect.Value, x T) {
	if v.CanAddr() {
		*(v.Addr().Interface().(*T)) = x
		return
	}
	v.Set(reflect.ValueOf(x))
}

// rate parses the rate s written at n, reporting it when it does not
// parse. An empty rate is left for validation ("missing rate").
func (d *decoder) rate(n ast.Node, s string) (Rate, bool) {
	if s == "" || d.tooLong(n, s) {
		return Rate{}, false
	}
	r, err := NewRate(s)
	if err != nil {
		d.report(n, fmt.Sprintf("invalid rate %q: %s", s, rateReason(err)), rateHint(s))
		d.markBad("")
		return Rate{}, false
	}
	return r, true
}

// structValue decodes a mapping into the struct v.
func (d *decoder) structValue(n ast.Node, v reflect.Value, depth int) {
	ents, ok := d.entries(n)
	if !ok {
		d.typeError(n, "a mapping", "")
		return
	}
	info := structInfoOf(v.Type())
	var seen uint64 // fields set so far (structs here have < 64 fields)
	for i := 0; i < ents.len(); i++ {
		e := ents.at(i)
		k, ok := keyText(e.mv.Key)
		if !ok {
			d.report(e.mv.Key, "mapping keys must be strings", "")
			continue
		}
		fi, ok := info.byName[k]
		if !ok {
			d.unknownField(e.mv.Key, k, info.names, e.merged)
			continue
		}
		if seen&(1<<uint(fi)) != 0 {
			if !e.merged {
				d.push(pathSeg{key: k, index: -1})
				d.report(e.mv.Key, fmt.Sprintf("duplicate key %q", k), "remove one of the two entries")
				d.pop()
			}
			continue
		}
		seen |= 1 << uint(fi)
		d.push(pathSeg{key: k, index: -1})
		d.value(e.mv.Value, v.Field(info.index[fi]), depth+1)
		d.pop()
	}
}

// unknownField reports key k, which the struct being decoded does not have.
func (d *decoder) unknownField(at ast.Node, k string, names []string, merged bool) {
	shown := k
	if len(shown) > 80 {
		shown = strings.ToValidUTF8(shown[:77], "") + "..."
	}
	msg := fmt.Sprintf("unknown field %q in %s", shown, d.where())
	if merged {
		msg += " (merged in with <<)"
	}
	hint := ""
	if s := suggest(k, names); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
		d.markBad(pathKey(s)) // the field the user meant is not missing
	} else {
		hint = "known fields: " + strings.Join(names, ", ")
	}
	d.push(pathSeg{key: k, index: -1})
	d.report(at, msg, hint)
	d.pop()
}

// mapValue decodes a mapping into a map with string keys and scalar values.
func (d *decoder) mapValue(n ast.Node, v reflect.Value, depth int) {
	ents, ok := d.entries(n)
	if !ok {
		d.typeError(n, "a mapping", "")
		return
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.report(n, fmt.Sprintf("cannot decode into %s", t), "")
		return
	}
	m := reflect.MakeMapWithSize(t, ents.len())
	for i := 0; i < ents.len(); i++ {
		e := ents.at(i)
		k, ok := keyText(e.mv.Key)
		if !ok {
			d.report(e.mv.Key, "mapping keys must be strings", "")
			continue
		}
		if d.tooLong(e.mv.Key, k) {
			continue
		}
		kv := reflect.ValueOf(k).Convert(t.Key())
		if m.MapIndex(kv).IsValid() {
			if !e.merged {
				d.push(pathSeg{key: k, index: -1})
				d.report(e.mv.Key, fmt.Sprintf("duplicate key %q", k), "remove one of the two entries")
				d.pop()
			}
			continue
		}
		el := reflect.New(t.Elem()).Elem()
		d.push(pathSeg{key: k, index: -1})
		d.value(e.mv.Value, el, depth+1)
		d.pop()
		m.SetMapIndex(kv, el)
	}
	v.Set(m)
}
