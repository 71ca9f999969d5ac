package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/openapi"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

func newImportCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Generate specs from other descriptions of an API (OpenAPI)",
	}
	cmd.AddCommand(newImportOpenAPICmd(f))
	return cmd
}

// ImportOpenAPIOptions are the inputs of `stoa import openapi`.
type ImportOpenAPIOptions struct {
	F        *Factory
	File     string
	Tenant   string
	Name     string
	Upstream string
	Tags     []string
	Ops      []string
}

func newImportOpenAPICmd(f *Factory) *cobra.Command {
	o := &ImportOpenAPIOptions{F: f}
	cmd := &cobra.Command{
		Use:   "openapi FILE|URL --tenant T --name N",
		Short: "Print a Tool spec with one operation per OpenAPI operation",
		Long: `stoa import openapi reads an OpenAPI 3 document (or Swagger 2.0, converted) and
prints a Tool spec (YAML; JSON with -o json, one line with -o ndjson) on stdout: one operation per
OpenAPI operation, named from its operationId in snake_case (else method and
path), described by its summary and description, with an input schema merged
from its path, query and header parameters and the members of its JSON request
body ($refs resolved), and annotations from the method. The upstream is
--upstream or the document's first server URL. Warnings go to stderr.

To keep a Tool in step with a document instead, write openapi: ./file.yaml in
the Tool spec: stoa validate, diff and apply import the operations each time.`,
		Example: `  stoa import openapi petstore.yaml --tenant acme --name petstore > petstore-tool.yaml
  stoa import openapi https://api.example.com/openapi.json -n acme --name shop --include-tags orders,carts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&o.Tenant, "tenant", "n", "", "tenant (metadata.namespace) of the Tool (required)")
	cmd.Flags().StringVar(&o.Name, "name", "", "name of the Tool (required)")
	cmd.Flags().StringVar(&o.Upstream, "upstream", "", "upstream base URL (default: the document's first server)")
	cmd.Flags().StringSliceVar(&o.Tags, "include-tags", nil, "import only operations with one of these tags")
	cmd.Flags().StringSliceVar(&o.Ops, "include-ops", nil, "import only these operations (operationId or generated name)")
	_ = cmd.MarkFlagFilename("upstream")
	return cmd
}

// Run prints the Tool spec the document describes.
func (o *ImportOpenAPIOptions) Run(ctx context.Context) error {
	if o.Tenant == "" || o.Name == "" {
		return errors.New("import openapi: --tenant and --name are required")
	}
	doc, err := openapi.Load(ctx, o.File, openapi.LoadOptions{AllowRemote: true})
	if err != nil {
		return fmt.Errorf("import openapi: %w", err)
	}
	obj, warns, err := doc.Tool(openapi.ImportOptions{Tenant: o.Tenant, Name: o.Name, Upstream: o.Upstream,
		Filter: openapi.Filter{Tags: o.Tags, Operations: o.Ops}})
	for _, w := range warns {
		fmt.Fprintf(o.F.IO.ErrOut, "warning: %s\n", w)
	}
	if err != nil {
		return fmt.Errorf("import openapi: %w", err)
	}
	// What is printed must apply: check it like `stoa validate` would.
	// (On a copy: defaults are not printed.)
	var check spec.Object
	if b, err := json.Marshal(obj); err == nil {
		err = json.Unmarshal(b, &check)
	}
	spec.Default(&check)
	if diags := spec.Validate([]*spec.Object{&check}, spec.ValidateOptions{SkipReferences: true}); diags.HasErrors() {
		diags.Format(o.F.IO.ErrOut, o.F.IO.ColorErr())
		return errors.New("import openapi: the generated Tool is not valid; fix the document or write these operations by hand")
	}
	// The product is a spec: YAML (with the document's comments) for
	// people and for -o yaml; JSON for -o json and -o ndjson.
	if o.F.Output == outJSON || o.F.Output == outNDJSON {
		return writeObject(o.F, obj)
	}
	y, err := openapi.YAML(obj, o.File)
	if err != nil {
		return fmt.Errorf("import openapi: %w", err)
	}
	_, err = o.F.IO.Out.Write(y)
	return err
}
