package mcp

import (
	"encoding/json"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// platformPrefix starts the names of the platform tools every caller sees.
const platformPrefix = spec.PlatformToolPrefix

type platformTool uint8

const (
	notPlatform platformTool = iota
	platformKindInfo
	platformKindSearch
)

// The platform tools, in the order they head every tools/list.
var (
	toolPlatformInfo = newPlatformTool(platformKindInfo, "stoa_platform_info", "stoa platform status",
		"Reports the stoa gateway's version, health and configuration revision, and who you are to it (tenant, admin).",
		`{"type":"object","additionalProperties":false}`)
	toolSearch = newPlatformTool(platformKindSearch, "stoa_tools", "Search tools",
		"Searches the tools you can call, by text (name, title, description) and tag. "+
			"Give `name` instead to get one tool's full definition, including its input schema.",
		`{"type":"object","properties":{`+
			`"query":{"type":"string","description":"Case-insensitive text to look for in names, titles and descriptions."},`+
			`"tag":{"type":"string","description":"Only tools with this tag (case-insensitive)."},`+
			`"name":{"type":"string","description":"Return the full definition of the tool with this exact name."},`+
			`"limit":{"type":"integer","minimum":1,"maximum":100,"default":20,"description":"Maximum number of results."}},`+
			`"additionalProperties":false}`)
	platformTools = []*Tool{toolPlatformInfo, toolSearch}
)

func newPlatformTool(kind platformTool, name, title, desc, schema string) *Tool {
	t := &Tool{
		Name:        name,
		Title:       title,
		Description: desc,
		InputSchema: json.RawMessage(schema),
		Annotations: Annotations{ReadOnly: true, Idempotent: true},
		platform:    kind,
	}
	sc := newSchemaCompiler()
	cs, err := sc.compile(t.InputSchema)
	if err != nil {
		panic("mcp: platform tool " + name + ": " + err.Error())
	}
	t.schema = cs
	return t
}

func platformByName(name string) *Tool {
	if !strings.HasPrefix(name, platformPrefix) {
		return nil
	}
	for _, t := range platformTools {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// callPlatform answers a platform tool call with an encoded CallToolResult
// body (without resultType/_meta, which the caller appends).
func (s *Server) callPlatform(b []byte, cat *Catalog, caller Caller, t *Tool, args []byte) []byte {
	switch t.platform {
	case platformKindInfo:
		info := s.backend.Info(caller)
		v := cat.viewFor(caller)
		out := struct {
			Server          string         `json:"server"`
			Version         string         `json:"version"`
			Health          string         `json:"health"`
			Revision        int64          `json:"revision"`
			CatalogRevision int64          `json:"catalogRevision"`
			Tenant          string         `json:"tenant,omitempty"`
			Admin           bool           `json:"admin,omitempty"`
			Tools           int            `json:"tools"`
			Details         map[string]any `json:"details,omitempty"`
		}{s.opts.ServerName, info.Version, info.Health, info.Revision, cat.revision, caller.Tenant, caller.Admin,
			len(v.tools), info.Details}
		js, _ := json.Marshal(out)
		return appendStructuredResult(b, js, false, true)
	case platformKindSearch:
		var in struct {
			Query, Tag, Name string
			Limit            int
		}
		if len(args) > 0 {
			_ = json.Unmarshal(args, &in) // already validated against the schema
		}
		if in.Name != "" {
			found, ok := cat.Lookup(caller, in.Name)
			if !ok {
				return appendTextResult(b, "No tool named "+in.Name+" is available to you. Search with query or tag instead.", true)
			}
			return appendStructuredResult(b, encodeTool(nil, found), false, true)
		}
		limit := in.Limit
		if limit <= 0 {
			limit = 20
		}
		q, tag := strings.ToLower(in.Query), strings.ToLower(in.Tag)
		js := []byte(`{"tools":[`)
		n, total := 0, 0
		for _, cand := range cat.viewFor(caller).tools {
			if cand.platform != notPlatform {
				continue
			}
			if q != "" && !cand.matches(q) {
				continue
			}
			if tag != "" && !hasTag(cand.Tags, tag) {
				continue
			}
			total++
			if n == limit {
				continue
			}
			if n > 0 {
				js = append(js, ',')
			}
			n++
			js = append(js, `{"name":`...)
			js = rpc.AppendString(js, cand.Name)
			if cand.Title != "" {
				js = append(js, `,"title":`...)
				js = rpc.AppendString(js, cand.Title)
			}
			js = append(js, `,"description":`...)
			js = rpc.AppendString(js, truncateUTF8(cand.Description, 300))
			if len(cand.Tags) > 0 {
				tags, _ := json.Marshal(cand.Tags)
				js = append(js, `,"tags":`...)
				js = append(js, tags...)
			}
			js = append(js, '}')
		}
		js = append(js, `],"total":`...)
		js = rpc.AppendInt(js, int64(total))
		js = append(js, '}')
		return appendStructuredResult(b, js, false, true)
	}
	return appendTextResult(b, "unknown platform tool", true)
}

func hasTag(tags []string, lower string) bool {
	for _, t := range tags {
		if strings.ToLower(t) == lower {
			return true
		}
	}
	return false
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary, adding "…"
// when it cut.
func truncateUTF8[T string | []byte](s T, n int) string {
	if len(s) <= n {
		return string(s)
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return string(s[:n]) + "…"
}

// matches reports whether the lower-cased query q occurs in t's name,
// title, description or tags, ignoring case. It lowers each field per
// search rather than keeping a lower-cased copy of every tool's text:
// searches are rare next to the memory 20,000 copies would hold.
func (t *Tool) matches(q string) bool {
	if strings.Contains(strings.ToLower(t.Name), q) || strings.Contains(strings.ToLower(t.Title), q) ||
		strings.Contains(strings.ToLower(t.Description), q) {
		return true
	}
	for _, tag := range t.Tags {
		if strings.Contains(strings.ToLower(tag), q) {
			return true
		}
	}
	return false
}
