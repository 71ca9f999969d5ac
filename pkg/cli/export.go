package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/yamlenc"
)

// ExportOptions are the inputs of `stoa export`.
type ExportOptions struct {
	F             *Factory
	Namespace     string
	AllNamespaces bool
	Dir           string // -f DIR: one file per tenant
	Output        string // -o FILE or a format for stdout
}

// clusterFile holds the cluster-scoped objects other than Tenants in an
// export to a directory. Tenant names are DNS labels, so no tenant's file
// can have this name.
const clusterFile = "_cluster.yaml"

func newExportCmd(f *Factory) *cobra.Command {
	o := &ExportOptions{F: f}
	cmd := &cobra.Command{
		Use:   "export [-n TENANT | -A] [-f DIR | -o FILE]",
		Short: "Write the live configuration as a spec set that applies back unchanged",
		Long: `Export writes the live objects as specs: apiVersion, kind, metadata and spec,
without the defaults stoad fills in (a field is left out when applying the
export restores it), in dependency order. Applying the export changes
nothing; "stoa diff -f" on it reports no changes.

-n TENANT exports the Tenant and every object in it; without -n (or with -A)
everything is exported, the Gateway included.

Where it goes: stdout by default (multi-document YAML); -o FILE writes one
file (JSON, as one "kind: List" document, when FILE ends in .json); -f DIR
writes one file per tenant (DIR/TENANT.yaml) and DIR/_cluster.yaml for the
Gateway. -o yaml|json|ndjson picks the format on stdout instead.

Values stoad masks (annotations whose key mentions a secret, token, password
or key) are exported as *** with a warning: put the real value back before
applying. Secrets themselves are never in specs (secretRef names them).`,
		Example: "  stoa export -n acme > acme.yaml\n  stoa export -A -f backup/\n  stoa export -o all.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Namespace != "" && o.AllNamespaces {
				return errors.New("export: pass -n TENANT or -A, not both")
			}
			if o.Dir != "" && o.Output != "" {
				return errors.New("export: pass -f DIR or -o FILE, not both")
			}
			return o.Run(cmd.Context())
		},
	}
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "export every tenant and the Gateway (the default without -n)")
	cmd.Flags().StringVarP(&o.Dir, "filename", "f", "", "write one file per tenant into this directory (created if missing)")
	_ = cmd.MarkFlagDirname("filename")
	// -o is the file to write (as in decK), or the format on stdout; it
	// shadows the global -o for this command.
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "write to this FILE (.yaml, .yml or .json), or yaml|json|ndjson on stdout (default: YAML on stdout)")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{outYAML, outJSON, outNDJSON}, cobra.ShellCompDirectiveFilterFileExt
	})
	return cmd
}

// Run exports.
func (o *ExportOptions) Run(ctx context.Context) error {
	ns := o.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	list, err := o.F.Client().Objects(ctx, "", "", "")
	if err != nil {
		return err
	}
	var objs []*spec.Object
	for _, it := range list.Items {
		if ns == "" || inTenant(it, ns) {
			objs = append(objs, it)
		}
	}
	if ns != "" && !slices.ContainsFunc(objs, func(it *spec.Object) bool { return it.Kind == spec.KindTenant }) {
		return &hintError{err: fmt.Errorf("export: tenant %q not found", ns), hint: "list the tenants with: stoa get tenants"}
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].Ref().Less(objs[j].Ref()) })
	docs, err := stripAll(objs)
	if err != nil {
		return err
	}
	for _, it := range objs {
		o.warn(it)
	}
	header := fmt.Sprintf("# stoa export of revision %d (defaults omitted); apply with: stoa apply -f FILE\n", list.Revision)

	switch {
	case o.Dir != "":
		return o.writeDir(objs, docs, header)
	case o.Output != "" && !slices.Contains(OutputFormats, o.Output):
		format := outYAML
		if strings.HasSuffix(strings.ToLower(o.Output), ".json") {
			format = outJSON
		}
		var b bytes.Buffer
		if err := writeDocs(&b, docs, format, header); err != nil {
			return err
		}
		if err := writeFileAtomic(o.Output, b.Bytes()); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fmt.Fprintf(o.F.IO.ErrOut, "exported %d %s to %s\n", len(objs), plural(len(objs), "object", "objects"), o.Output)
		return nil
	}
	format := o.Output
	if format == "" || format == outTable || format == outWide {
		format = outYAML
	}
	if len(objs) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no objects to export")
	}
	return writeDocs(o.F.IO.Out, docs, format, header)
}

// stripAll strips every object's defaults, on all CPUs: each object costs
// about a millisecond (dozens of decode-and-default checks), and an export
// of thousands of tools should not wait on one core.
func stripAll(objs []*spec.Object) ([][]byte, error) {
	docs := make([][]byte, len(objs))
	errs := make([]error, len(objs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(objs), 1)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(objs); i = int(next.Add(1) - 1) {
				if docs[i], errs[i] = stripDefaults(objs[i]); errs[i] != nil {
					errs[i] = fmt.Errorf("export %s: %w", objs[i].Ref(), errs[i])
				}
			}
		})
	}
	wg.Wait()
	return docs, errors.Join(errs...)
}

// warn tells what the export cannot carry faithfully.
func (o *ExportOptions) warn(it *spec.Object) {
	for k, v := range it.Metadata.Annotations {
		if v == spec.Masked {
			fmt.Fprintf(o.F.IO.ErrOut, "warning: %s: annotation %q is exported masked (%s); put its value back before applying\n", it.Ref(), k, spec.Masked)
		}
	}
	if ts, ok := it.Spec.(*spec.ToolSpec); ok && ts.OpenAPI != "" && !strings.Contains(ts.OpenAPI, "://") {
		fmt.Fprintf(o.F.IO.ErrOut, "warning: %s: openapi: %s is a path relative to the spec file; keep the document next to the export (its operations are also written inline)\n", it.Ref(), ts.OpenAPI)
	}
}

// writeDocs writes stripped objects as multi-document YAML, one JSON List
// document, or NDJSON.
func writeDocs(w io.Writer, docs [][]byte, format, header string) error {
	switch format {
	case outJSON:
		raw := make([]json.RawMessage, len(docs))
		for i, d := range docs {
			raw[i] = d
		}
		return writeJSON(w, List[json.RawMessage]{APIVersion: spec.APIVersion, Kind: "List", Items: raw})
	case outNDJSON:
		for _, d := range docs {
			if _, err := fmt.Fprintf(w, "%s\n", d); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := io.WriteString(w, header); err != nil {
		return err
	}
	for i, d := range docs {
		y, err := yamlenc.FromJSON(d)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return err
			}
		}
		if _, err := w.Write(y); err != nil {
			return err
		}
	}
	return nil
}

// writeDir writes DIR/TENANT.yaml per tenant (the Tenant and its objects)
// and DIR/_cluster.yaml (the Gateway).
func (o *ExportOptions) writeDir(objs []*spec.Object, docs [][]byte, header string) error {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	files := map[string][][]byte{}
	for i, it := range objs {
		name := clusterFile
		switch {
		case it.Kind == spec.KindTenant:
			name = it.Metadata.Name + ".yaml"
		case it.Kind.Namespaced():
			name = it.Metadata.Namespace + ".yaml"
		}
		files[name] = append(files[name], docs[i])
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var b bytes.Buffer
		if err := writeDocs(&b, files[n], outYAML, header); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(o.Dir, n), b.Bytes()); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	// Other spec files in DIR would be applied along with the export.
	entries, _ := os.ReadDir(o.Dir)
	for _, e := range entries {
		n := e.Name()
		if _, ours := files[n]; !ours && !e.IsDir() && !strings.HasPrefix(n, ".") && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			fmt.Fprintf(o.F.IO.ErrOut, "warning: %s was not written by this export; stoa apply -f %s would apply it too\n", filepath.Join(o.Dir, n), o.Dir)
		}
	}
	fmt.Fprintf(o.F.IO.ErrOut, "exported %d %s to %d %s in %s\n", len(objs), plural(len(objs), "object", "objects"),
		len(names), plural(len(names), "file", "files"), o.Dir)
	return nil
}

// writeFileAtomic replaces path with data: a reader (or a crash) sees the
// old file or the new one, never half of it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
