package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/specdoc"
)

// File is one generated file, relative to the repository root.
type File struct {
	Path string
	Data []byte
}

// Schema output directory.
const specsDir = "specs/stoa.io/v1alpha1"

// Generate builds every generated file from the source under root.
func Generate(root string) ([]File, error) {
	m, err := BuildModel(filepath.Join(root, "pkg", "spec"))
	if err != nil {
		return nil, err
	}
	var files []File
	src, err := renderGo(m)
	if err != nil {
		return nil, err
	}
	files = append(files, File{"pkg/specdoc/zz_generated.go", src})
	for _, k := range m.KindNames() {
		b, err := specdoc.MarshalSchema(m.KindSchema(k))
		if err != nil {
			return nil, err
		}
		files = append(files, File{filepath.ToSlash(filepath.Join(specsDir, strings.ToLower(k)+".json")), b})
	}
	b, err := specdoc.MarshalSchema(m.AllSchema())
	if err != nil {
		return nil, err
	}
	files = append(files, File{specsDir + "/all.json", b})
	return files, nil
}

// source is pkg/spec parsed: its named types and []string tables.
type source struct {
	types  map[string]*ast.TypeSpec
	docs   map[string]string
	tables map[string][]string
}

func parseSpec(dir string) (*source, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	s := &source{types: map[string]*ast.TypeSpec{}, docs: map[string]string{}, tables: map[string][]string{}}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, sp := range gd.Specs {
				switch sp := sp.(type) {
				case *ast.TypeSpec:
					s.types[sp.Name.Name] = sp
					doc := sp.Doc
					if doc == nil && len(gd.Specs) == 1 {
						doc = gd.Doc
					}
					s.docs[sp.Name.Name] = docText(doc)
				case *ast.ValueSpec:
					for i, id := range sp.Names {
						if i < len(sp.Values) {
							if vals, ok := stringSlice(sp.Values[i]); ok {
								s.tables[id.Name] = vals
							}
						}
					}
				}
			}
		}
	}
	return s, nil
}

// stringSlice reads a []string{"a", "b"} literal.
func stringSlice(e ast.Expr) ([]string, bool) {
	cl, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil, false
	}
	at, ok := cl.Type.(*ast.ArrayType)
	if !ok || at.Len != nil {
		return nil, false
	}
	if id, ok := at.Elt.(*ast.Ident); !ok || id.Name != "string" {
		return nil, false
	}
	var out []string
	for _, el := range cl.Elts {
		bl, ok := el.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return nil, false
		}
		v, err := strconv.Unquote(bl.Value)
		if err != nil {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// docText turns a doc comment into text: lines of a paragraph joined with
// spaces, paragraphs separated by a blank line.
func docText(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	var paras []string
	for _, p := range strings.Split(strings.TrimSpace(cg.Text()), "\n\n") {
		paras = append(paras, strings.Join(strings.Fields(p), " "))
	}
	return strings.Join(paras, "\n\n")
}

// BuildModel reads pkg/spec at dir and documents every kind.
func BuildModel(dir string) (*specdoc.Model, error) {
	src, err := parseSpec(dir)
	if err != nil {
		return nil, err
	}
	m := &specdoc.Model{Types: map[string]*specdoc.Type{}, Scalars: map[string]*specdoc.Scalar{}, Kinds: map[string]string{}}
	b := &builder{src: src, m: m, used: map[string]bool{}}
	for _, k := range spec.Kinds {
		name := reflect.TypeOf(spec.NewSpec(k)).Elem().Name()
		m.Kinds[string(k)] = name
		if err := b.addType(name); err != nil {
			return nil, err
		}
	}
	if err := b.addType("Metadata"); err != nil {
		return nil, err
	}
	for key := range fieldRules {
		if !b.used[key] {
			return nil, fmt.Errorf("rule %s names no field of pkg/spec (renamed?)", key)
		}
	}
	for name, tr := range typeRules {
		t := m.Types[name]
		if t == nil {
			return nil, fmt.Errorf("type rule %s names no type of pkg/spec", name)
		}
		t.StringForm, t.OneOf = tr.stringForm, tr.oneOf
	}
	return m, nil
}

type builder struct {
	src  *source
	m    *specdoc.Model
	used map[string]bool
}

func (b *builder) addType(name string) error {
	if b.m.Types[name] != nil || b.m.Scalars[name] != nil {
		return nil
	}
	ts := b.src.types[name]
	if ts == nil {
		return fmt.Errorf("type %s not found in pkg/spec", name)
	}
	// A named scalar is a string in YAML and JSON whatever its Go shape:
	// Duration and Rate are structs that keep their text.
	if _, ok := scalarPatterns[name]; ok {
		b.m.Scalars[name] = &specdoc.Scalar{Name: name, Doc: b.src.docs[name], Pattern: scalarPatterns[name]}
		return nil
	}
	switch t := ts.Type.(type) {
	case *ast.Ident: // a named scalar: type Duration string
		b.m.Scalars[name] = &specdoc.Scalar{Name: name, Doc: b.src.docs[name], Pattern: scalarPatterns[name]}
		return nil
	case *ast.StructType:
		typ := &specdoc.Type{Name: name, Doc: b.src.docs[name]}
		b.m.Types[name] = typ
		for _, f := range t.Fields.List {
			if len(f.Names) == 0 || !f.Names[0].IsExported() || f.Tag == nil {
				continue
			}
			tag, _ := strconv.Unquote(f.Tag.Value)
			jsonName, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
			if jsonName == "" || jsonName == "-" {
				continue
			}
			ref, err := b.ref(f.Type)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", name, f.Names[0].Name, err)
			}
			field := specdoc.Field{Name: jsonName, Doc: docText(f.Doc), Type: ref}
			key := name + "." + jsonName
			if r, ok := fieldRules[key]; ok {
				b.used[key] = true
				field.Required, field.Enum, field.Pattern, field.Minimum, field.Maximum = r.required, r.enum, r.pattern, r.min, r.max
				if r.enumVar != "" {
					vals, ok := b.src.tables[r.enumVar]
					if !ok {
						return fmt.Errorf("rule %s: no []string %s in pkg/spec", key, r.enumVar)
					}
					field.Enum = vals
				}
			}
			typ.Fields = append(typ.Fields, field)
		}
		return nil
	}
	return fmt.Errorf("type %s: unsupported kind %T", name, ts.Type)
}

func (b *builder) ref(e ast.Expr) (specdoc.Ref, error) {
	switch t := e.(type) {
	case *ast.StarExpr:
		return b.ref(t.X)
	case *ast.ArrayType:
		el, err := b.ref(t.Elt)
		return specdoc.Ref{Kind: "array", Elem: &el}, err
	case *ast.MapType:
		if k, ok := t.Key.(*ast.Ident); !ok || k.Name != "string" {
			return specdoc.Ref{}, fmt.Errorf("map keys must be strings")
		}
		el, err := b.ref(t.Value)
		return specdoc.Ref{Kind: "map", Elem: &el}, err
	case *ast.InterfaceType:
		return specdoc.Ref{Kind: "any"}, nil
	case *ast.Ident:
		switch t.Name {
		case "string":
			return specdoc.Ref{Kind: "string"}, nil
		case "bool":
			return specdoc.Ref{Kind: "boolean"}, nil
		case "int", "int32", "int64", "uint", "uint16", "uint32", "uint64":
			return specdoc.Ref{Kind: "integer"}, nil
		case "float32", "float64":
			return specdoc.Ref{Kind: "number"}, nil
		case "any":
			return specdoc.Ref{Kind: "any"}, nil
		}
		if err := b.addType(t.Name); err != nil {
			return specdoc.Ref{}, err
		}
		if b.m.Scalars[t.Name] != nil {
			return specdoc.Ref{Kind: "scalar", Name: t.Name}, nil
		}
		return specdoc.Ref{Kind: "object", Name: t.Name}, nil
	}
	return specdoc.Ref{}, fmt.Errorf("unsupported type %T", e)
}

// renderGo writes the model as Go source for pkg/specdoc.
func renderGo(m *specdoc.Model) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by internal/gen/schemagen from pkg/spec; DO NOT EDIT.\n\npackage specdoc\n\n")
	b.WriteString("func intp(v int) *int { return &v }\n\n")
	b.WriteString("var generated = &Model{\n\tKinds: map[string]string{\n")
	for _, k := range sorted(m.Kinds) {
		fmt.Fprintf(&b, "\t\t%q: %q,\n", k, m.Kinds[k])
	}
	b.WriteString("\t},\n\tScalars: map[string]*Scalar{\n")
	for _, k := range sorted(m.Scalars) {
		s := m.Scalars[k]
		fmt.Fprintf(&b, "\t\t%q: {Name: %q, Doc: %q, Pattern: %q},\n", k, s.Name, s.Doc, s.Pattern)
	}
	b.WriteString("\t},\n\tTypes: map[string]*Type{\n")
	for _, k := range sorted(m.Types) {
		t := m.Types[k]
		fmt.Fprintf(&b, "\t\t%q: {Name: %q, Doc: %q", k, t.Name, t.Doc)
		if t.StringForm != "" {
			fmt.Fprintf(&b, ", StringForm: %q", t.StringForm)
		}
		if len(t.OneOf) > 0 {
			fmt.Fprintf(&b, ", OneOf: %#v", t.OneOf)
		}
		b.WriteString(", Fields: []Field{\n")
		for _, f := range t.Fields {
			fmt.Fprintf(&b, "\t\t\t{Name: %q, Doc: %q, Type: %s", f.Name, f.Doc, refGo(f.Type))
			if f.Required {
				b.WriteString(", Required: true")
			}
			if len(f.Enum) > 0 {
				fmt.Fprintf(&b, ", Enum: %#v", f.Enum)
			}
			if f.Pattern != "" {
				fmt.Fprintf(&b, ", Pattern: %q", f.Pattern)
			}
			if f.Minimum != nil {
				fmt.Fprintf(&b, ", Minimum: intp(%d)", *f.Minimum)
			}
			if f.Maximum != nil {
				fmt.Fprintf(&b, ", Maximum: intp(%d)", *f.Maximum)
			}
			b.WriteString("},\n")
		}
		b.WriteString("\t\t}},\n")
	}
	b.WriteString("\t},\n}\n")
	return format.Source(b.Bytes())
}

func refGo(r specdoc.Ref) string {
	s := fmt.Sprintf("Ref{Kind: %q", r.Kind)
	if r.Name != "" {
		s += fmt.Sprintf(", Name: %q", r.Name)
	}
	if r.Elem != nil {
		s += ", Elem: &" + refGo(*r.Elem)
	}
	return s + "}"
}

func sorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
