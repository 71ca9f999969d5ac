package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/specdoc"
)

// ExplainOptions are the inputs of `stoa explain`.
type ExplainOptions struct {
	F         *Factory
	Path      string
	Recursive bool
}

func newExplainCmd(f *Factory) *cobra.Command {
	o := &ExplainOptions{F: f}
	cmd := &cobra.Command{
		Use:   "explain KIND[.FIELD.PATH]",
		Short: "Document a kind or one of its fields (like kubectl explain)",
		Long: `Explain prints the documentation of a kind (Tool, Tenant, …) or of one of its
fields: its type, whether it is required, the values it accepts and the
fields below it. Paths may skip "spec" (tool.auth = tool.spec.auth) and pass
through lists (tool.operations.method). It works offline: the documentation
is built into stoa from the same source as the JSON Schemas in specs/.`,
		Example: "  stoa explain tool\n  stoa explain tool.auth.type\n  stoa explain gateway.xdp --recursive\n  stoa explain tool.operations -o json",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeExplainPath(toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Path = args[0]
			return o.Run()
		},
	}
	cmd.Flags().BoolVar(&o.Recursive, "recursive", false, "list every field below, as a tree")
	return cmd
}

// Run prints the documentation.
func (o *ExplainOptions) Run() error {
	m := specdoc.Default()
	n, err := m.Resolve(o.Path)
	if err != nil {
		return &hintError{err: err, hint: "list a kind's fields with: stoa explain KIND (e.g. stoa explain tool)"}
	}
	if done, err := printed(o.F, explainJSON(m, n)); done {
		return err
	}
	return m.Explain(o.F.IO.Out, n, o.Recursive)
}

// explainedField is a field in `stoa explain -o json`.
type explainedField struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Required    bool     `json:"required,omitempty"`
	Description string   `json:"description,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Pattern     string   `json:"pattern,omitempty"`
}

type explained struct {
	Kind        string           `json:"kind"`
	Path        string           `json:"path,omitempty"`
	Type        string           `json:"type"`
	Required    bool             `json:"required,omitempty"`
	Description string           `json:"description,omitempty"`
	Enum        []string         `json:"enum,omitempty"`
	Pattern     string           `json:"pattern,omitempty"`
	Fields      []explainedField `json:"fields,omitempty"`
}

func explainJSON(m *specdoc.Model, n *specdoc.Node) explained {
	out := explained{Kind: n.Kind, Path: n.Path, Type: n.Kind, Description: n.Doc}
	if f := n.Field; f != nil {
		out.Type, out.Required, out.Enum, out.Pattern = f.Type.Label(), f.Required, f.Enum, f.Pattern
	}
	if n.Type != nil {
		for _, f := range n.Type.Fields {
			out.Fields = append(out.Fields, explainedField{Name: f.Name, Type: f.Type.Label(), Required: f.Required,
				Description: f.Doc, Enum: f.Enum, Pattern: f.Pattern})
		}
	}
	return out
}

// completeExplainPath completes KIND and KIND.field.path arguments.
func completeExplainPath(toComplete string) []string {
	m := specdoc.Default()
	dot := strings.LastIndex(toComplete, ".")
	if dot < 0 {
		var out []string
		for _, k := range m.KindNames() {
			if l := strings.ToLower(k); strings.HasPrefix(l, strings.ToLower(toComplete)) {
				out = append(out, l+".", l)
			}
		}
		return out
	}
	n, err := m.Resolve(toComplete[:dot])
	if err != nil || n.Type == nil {
		return nil
	}
	prefix, partial := toComplete[:dot+1], toComplete[dot+1:]
	fields := n.Type.Fields
	if n.Field == nil { // at the kind: offer spec's fields too (tool.auth)
		if spec := m.Types[m.Kinds[n.Kind]]; spec != nil {
			fields = append(append([]specdoc.Field(nil), fields...), spec.Fields...)
		}
	}
	var out []string
	for _, f := range fields {
		if strings.HasPrefix(f.Name, partial) {
			out = append(out, prefix+f.Name)
			if m.Object(f.Type) != nil {
				out = append(out, prefix+f.Name+".")
			}
		}
	}
	return out
}
