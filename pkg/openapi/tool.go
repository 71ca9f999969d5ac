package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/yamlenc"
)

// ImportOptions are the inputs of `stoa import openapi`.
type ImportOptions struct {
	Tenant, Name string
	// Upstream overrides the document's first server URL.
	Upstream string
	Filter   Filter
}

// Upstream returns the document's first server URL with its variables
// set to their defaults, resolved against the document's own URL when
// relative.
func (d *Document) Upstream() (string, error) {
	if len(d.T.Servers) == 0 || d.T.Servers[0] == nil || d.T.Servers[0].URL == "" {
		return "", fmt.Errorf("%s lists no servers", d.Location)
	}
	s := d.T.Servers[0]
	raw := s.URL
	for name, v := range s.Variables {
		if v != nil {
			raw = strings.ReplaceAll(raw, "{"+name+"}", v.Default)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", s.URL, err)
	}
	if !u.IsAbs() {
		if d.base == nil || (d.base.Scheme != "http" && d.base.Scheme != "https") {
			return "", fmt.Errorf("server URL %q is relative", s.URL)
		}
		u = d.base.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("server URL %q is not http(s)", s.URL)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Tool builds the Tool object `stoa import openapi` prints. Operations
// whose MCP name would exceed spec.MaxMCPNameLen get an explicit mcpName
// (reported in the warnings).
func (d *Document) Tool(opts ImportOptions) (*spec.Object, []string, error) {
	warns := append([]string(nil), d.Warnings...)
	upstream := opts.Upstream
	if upstream == "" {
		u, err := d.Upstream()
		if err != nil {
			return nil, warns, fmt.Errorf("%w: pass --upstream URL", err)
		}
		upstream = u
	}
	imported, w := d.Operations(opts.Filter)
	warns = append(warns, w...)
	if len(imported) == 0 {
		return nil, warns, fmt.Errorf("no operations selected from %s", d.Location)
	}
	// Written out, although it is the default, so the printed Tool says
	// that callers need an API key (and keeps needing one on an older
	// stoad, whose default was public). auth: {type: none} makes it public.
	ts := &spec.ToolSpec{Protocol: "rest", Upstream: upstream, Auth: &spec.ToolAuth{Type: "apiKey"}}
	if info := d.T.Info; info != nil {
		ts.Description = strings.TrimSpace(info.Title)
		if desc := strings.TrimSpace(info.Description); desc != "" {
			if ts.Description != "" {
				ts.Description += ": "
			}
			ts.Description += firstParagraph(desc)
		}
	}
	taken := map[string]bool{}
	for _, imp := range imported {
		op := imp.Op
		if op.MCPName == "" {
			if full := spec.MCPToolName(opts.Tenant, opts.Name, &op); len(full) > spec.MaxMCPNameLen {
				op.MCPName = shortMCPName(opts.Tenant, op.Name, taken)
				warns = append(warns, fmt.Sprintf("operation %s: MCP name %s is %d characters; set mcpName: %s", op.Name, full, len(full), op.MCPName))
			}
		}
		ts.Operations = append(ts.Operations, op)
	}
	o := &spec.Object{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindTool,
		Metadata:   spec.Metadata{Name: opts.Name, Namespace: opts.Tenant},
		Spec:       ts,
	}
	return o, warns, nil
}

// shortMCPName is {tenant}__{op} cut to the limit, made unique.
func shortMCPName(tenant, op string, taken map[string]bool) string {
	name := tenant + "__" + op
	if len(name) > spec.MaxMCPNameLen-3 {
		name = name[:spec.MaxMCPNameLen-3]
	}
	return uniqueName(strings.TrimRight(name, "_-"), taken)
}

func firstParagraph(s string) string {
	if i := strings.Index(s, "\n\n"); i >= 0 {
		s = s[:i]
	}
	return strings.Join(strings.Fields(s), " ")
}

// YAML renders a Tool object as a spec document with a header comment.
func YAML(o *spec.Object, source string) ([]byte, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	y, err := yamlenc.FromJSON(b)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Imported from %s by `stoa import openapi`; edit freely.\n", source)
	buf.Write(y)
	return buf.Bytes(), nil
}
