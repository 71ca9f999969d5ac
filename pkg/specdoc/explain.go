package specdoc

import (
	"fmt"
	"io"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Node is what a path such as tool.spec.auth.type resolves to.
type Node struct {
	Kind string // Tool
	Path string // spec.auth.type; "" for the kind itself
	// Field is the field the path names; nil for the kind itself.
	Field *Field
	// Type is the struct the field leads to (its fields are listed), or
	// nil for scalars.
	Type *Type
	// Doc describes the node.
	Doc string
}

// envelope is the top-level fields every object has.
func (m *Model) objectType(kind string) *Type {
	specType := m.Kinds[kind]
	doc := ""
	if t := m.Types[specType]; t != nil {
		doc = t.Doc
	}
	return &Type{Name: kind, Doc: doc, Fields: []Field{
		{Name: "apiVersion", Type: Ref{Kind: "string"}, Required: true, Enum: []string{spec.APIVersion},
			Doc: "APIVersion is the version of the object model: " + spec.APIVersion + "."},
		{Name: "kind", Type: Ref{Kind: "string"}, Required: true, Enum: []string{kind}, Doc: "Kind is " + kind + "."},
		{Name: "metadata", Type: Ref{Kind: "object", Name: "Metadata"}, Required: true, Doc: metadataDoc(kind)},
		{Name: "spec", Type: Ref{Kind: "object", Name: specType}, Required: true, Doc: doc},
	}}
}

// Resolve finds KIND[.field.path]. The kind may be written as for stoa get
// (tool, tools, ts); a path that does not start with apiVersion, kind,
// metadata or spec is looked up under spec (tool.auth = tool.spec.auth).
func (m *Model) Resolve(path string) (*Node, error) {
	parts := strings.Split(strings.TrimSpace(path), ".")
	k, ok := spec.ParseKind(parts[0])
	if !ok || m.Kinds[string(k)] == "" {
		return nil, fmt.Errorf("unknown kind %q (kinds: %s)", parts[0], strings.Join(m.KindNames(), ", "))
	}
	kind := string(k)
	cur := m.objectType(kind)
	n := &Node{Kind: kind, Type: cur, Doc: cur.Doc}
	fields := parts[1:]
	if len(fields) > 0 && cur.Field(fields[0]) == nil && fields[0] != "" {
		fields = append([]string{"spec"}, fields...)
	}
	var walked []string
	for _, name := range fields {
		if cur == nil {
			return nil, fmt.Errorf("%s.%s: %s is a %s and has no fields", strings.ToLower(kind), strings.Join(walked, "."), walked[len(walked)-1], n.Field.Type.Label())
		}
		f := cur.Field(name)
		if f == nil {
			return nil, fmt.Errorf("%s has no field %q (fields: %s)", where(kind, walked), name, fieldNames(cur))
		}
		walked = append(walked, f.Name)
		n.Field, n.Doc = f, f.Doc
		cur = m.Object(f.Type)
		n.Type = cur
	}
	n.Path = strings.Join(walked, ".")
	return n, nil
}

func where(kind string, walked []string) string {
	if len(walked) == 0 {
		return kind
	}
	return kind + "." + strings.Join(walked, ".")
}

func fieldNames(t *Type) string {
	var ns []string
	for _, f := range t.Fields {
		ns = append(ns, f.Name)
	}
	return strings.Join(ns, ", ")
}

// Explain writes the documentation of a node like kubectl explain: the
// kind, the field and its type, its description, and the fields below it
// (with recursive, the whole tree below it).
func (m *Model) Explain(w io.Writer, n *Node, recursive bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "KIND:     %s\nVERSION:  %s\n\n", n.Kind, spec.APIVersion)
	if n.Field != nil {
		fmt.Fprintf(&b, "FIELD:    %s <%s>\n\n", n.Path, n.Field.Type.Label())
	}
	b.WriteString("DESCRIPTION:\n")
	doc := n.Doc
	if n.Field != nil {
		doc = m.describe(n.Field)
	}
	if doc == "" {
		doc = "(no description)"
	}
	b.WriteString(indent(wrap(doc, 72), 5))
	if n.Type != nil && len(n.Type.Fields) > 0 {
		b.WriteString("\nFIELDS:\n")
		m.fields(&b, n.Type, 3, recursive, map[string]bool{n.Type.Name: true})
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// describe is a field's doc comment plus its constraints.
func (m *Model) describe(f *Field) string {
	doc := f.Doc
	var notes []string
	if len(f.Enum) > 0 {
		notes = append(notes, "One of: "+strings.Join(f.Enum, ", ")+".")
	}
	if f.Pattern != "" {
		notes = append(notes, "Must match "+f.Pattern+".")
	}
	if f.Minimum != nil && f.Maximum != nil {
		notes = append(notes, fmt.Sprintf("From %d to %d.", *f.Minimum, *f.Maximum))
	}
	r := f.Type
	for r.Kind == "array" || r.Kind == "map" {
		r = *r.Elem
	}
	if r.Kind == "scalar" {
		if sc := m.Scalars[r.Name]; sc != nil && sc.Doc != "" {
			notes = append(notes, sc.Doc)
		}
	}
	if t := m.Types[r.Name]; r.Kind == "object" && t != nil && t.StringForm != "" {
		notes = append(notes, t.Doc)
	}
	if len(notes) > 0 {
		if doc != "" {
			doc += "\n\n"
		}
		doc += strings.Join(notes, " ")
	}
	return doc
}

func (m *Model) fields(b *strings.Builder, t *Type, ind int, recursive bool, seen map[string]bool) {
	for _, f := range t.Fields {
		req := ""
		if f.Required {
			req = " -required-"
		}
		fmt.Fprintf(b, "%s%s\t<%s>%s\n", strings.Repeat(" ", ind), f.Name, f.Type.Label(), req)
		if recursive {
			if sub := m.Object(f.Type); sub != nil && !seen[sub.Name] {
				seen[sub.Name] = true
				m.fields(b, sub, ind+3, true, seen)
				delete(seen, sub.Name)
			}
			continue
		}
		if d := m.describe(&f); d != "" {
			b.WriteString(indent(wrap(d, 72-ind), ind+2))
		}
		b.WriteString("\n")
	}
}

// wrap breaks text into lines of at most width columns, keeping blank-line
// paragraph breaks.
func wrap(text string, width int) string {
	var out []string
	for _, para := range strings.Split(text, "\n\n") {
		words := strings.Fields(para)
		line := ""
		for _, w := range words {
			if line != "" && len(line)+1+len(w) > width {
				out = append(out, line)
				line = w
				continue
			}
			if line != "" {
				line += " "
			}
			line += w
		}
		out = append(out, line, "")
	}
	return strings.Join(out[:len(out)-1], "\n")
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
