package openapi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// maxWarnings bounds the warnings reported per Tool.
const maxWarnings = 5

// ExpandOptions control Expand.
type ExpandOptions struct {
	Load LoadOptions
	// Dir resolves `openapi:` paths of objects that came from stdin or from
	// code; default: the working directory.
	Dir string
}

// Expand imports the operations of every Tool that names an OpenAPI
// document (`openapi: ./file.yaml`, relative to the spec file, or an
// http(s) URL when remote documents are allowed). Operations written in
// the spec win over imported ones of the same name; imported operations
// follow them. A Tool without upstream gets the document's first server.
// The raw document is stored in the DocumentAnnotation annotation so stoad
// can serve it as an MCP resource.
//
// diags are the loader's diagnostics: those about the referenced OpenAPI
// files themselves (a directory given with -f also holds them, and the
// loader reads every *.yaml as specs) are dropped. Problems are returned as
// diagnostics pointing at the `openapi:` line.
func Expand(ctx context.Context, objs []*spec.Object, diags spec.Diagnostics, opts ExpandOptions) spec.Diagnostics {
	referenced := map[string]bool{}
	cache := map[string]*Document{}
	failed := map[string]error{}
	var out spec.Diagnostics
	for _, o := range objs {
		ts, ok := o.Spec.(*spec.ToolSpec)
		if !ok || ts.OpenAPI == "" {
			continue
		}
		loc := resolveLocation(o, ts.OpenAPI, opts.Dir)
		if !isRemote(loc) {
			referenced[absPath(loc)] = true
		}
		doc, err := cache[loc], failed[loc]
		if doc == nil && err == nil {
			doc, err = Load(ctx, loc, opts.Load)
			if err != nil {
				failed[loc] = err
			} else {
				cache[loc] = doc
			}
		}
		if err != nil {
			hint := "the path is relative to this spec file"
			if isRemote(loc) && !opts.Load.AllowRemote {
				hint = "save the document next to the specs and name it with a relative path"
			}
			out = append(out, diagAt(o, spec.SeverityError, fmt.Sprintf("openapi: %v", err), hint))
			continue
		}
		out = append(out, expandTool(o, ts, doc)...)
	}
	for _, d := range diags {
		if d.File != "" && d.File != spec.StdinName && referenced[absPath(d.File)] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// expandTool merges doc's operations into one Tool.
func expandTool(o *spec.Object, ts *spec.ToolSpec, doc *Document) spec.Diagnostics {
	var out spec.Diagnostics
	imported, warns := doc.Operations(Filter{})
	warns = append(append([]string(nil), doc.Warnings...), warns...)
	for i, w := range warns {
		if i == maxWarnings {
			out = append(out, diagAt(o, spec.SeverityWarning, fmt.Sprintf("openapi: %d more warnings about %s", len(warns)-maxWarnings, doc.Location), ""))
			break
		}
		out = append(out, diagAt(o, spec.SeverityWarning, "openapi: "+w, ""))
	}
	if ts.Upstream == "" && len(ts.Upstreams) == 0 {
		u, err := doc.Upstream()
		if err != nil {
			out = append(out, diagAt(o, spec.SeverityError, "openapi: "+err.Error(), "set spec.upstream to the API's base URL"))
		} else {
			ts.Upstream = u
		}
	}
	explicit := map[string]bool{}
	for _, op := range ts.Operations {
		explicit[op.Name] = true
	}
	added := 0
	for _, imp := range imported {
		op := imp.Op
		if explicit[op.Name] {
			continue
		}
		if op.MCPName == "" {
			if full := spec.MCPToolName(o.Metadata.Namespace, o.Metadata.Name, &op); len(full) > spec.MaxMCPNameLen {
				out = append(out, diagAt(o, spec.SeverityError,
					fmt.Sprintf("openapi: operation %s would be the MCP tool %s, %d characters long; at most %d are allowed", op.Name, full, len(full), spec.MaxMCPNameLen),
					fmt.Sprintf("give the operation an x-mcp-name in the document, or list it under spec.operations with an mcpName such as %s", shortMCPName(o.Metadata.Namespace, op.Name, map[string]bool{}))))
				continue
			}
		}
		ts.Operations = append(ts.Operations, op)
		added++
	}
	if len(imported) == 0 {
		out = append(out, diagAt(o, spec.SeverityWarning, fmt.Sprintf("openapi: %s has no operations to import", doc.Location), ""))
	}
	if o.Metadata.Annotations == nil {
		o.Metadata.Annotations = map[string]string{}
	}
	o.Metadata.Annotations[DocumentAnnotation] = encodeDocument(doc.Raw)
	return out
}

// resolveLocation makes a relative `openapi:` path relative to the spec
// file that holds it.
func resolveLocation(o *spec.Object, loc, dir string) string {
	if isRemote(loc) || filepath.IsAbs(loc) {
		return loc
	}
	base := dir
	if o.Source != nil && o.Source.File != "" && o.Source.File != spec.StdinName {
		base = filepath.Dir(o.Source.File)
	}
	if base == "" {
		base, _ = os.Getwd()
	}
	return filepath.Join(base, loc)
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}

// diagAt reports a problem at o's `openapi:` line.
func diagAt(o *spec.Object, sev spec.Severity, msg, hint string) *spec.Diagnostic {
	ref := o.Ref()
	d := &spec.Diagnostic{Object: &ref, Path: "spec.openapi", Message: msg, Hint: hint, Severity: sev}
	if o.Source != nil {
		d.File = o.Source.File
		d.Line, d.Column, d.SourceLine = o.Source.Position("spec.openapi", false)
	}
	return d
}
