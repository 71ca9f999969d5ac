package mcp

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stoa-gateway/stoa/pkg/mcp/argmap"
	"github.com/stoa-gateway/stoa/pkg/mcp/internal/rpc"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Catalog is the immutable MCP view of one configuration revision: every
// tenant's tools sorted by name with their tools/list entries pre-encoded
// back to back (a page is one sub-slice), compiled argument validators and
// argument-mapping plans, and the resources (each Tool's documentation and
// OpenAPI document). Build it with BuildCatalog and install it with
// Server.SetCatalog.
type Catalog struct {
	revision  int64
	tools     map[string]*Tool // tenant tools by name
	tenants   map[string]*view
	admin     *view
	platform  *view // callers with no tenant
	resources map[string]*resource
	issuers   map[string][]string // tenant -> authorization servers
	// fedResources maps the resource prefix of each federated Tool that
	// exposes its upstream's resources to the Tool: reads under it go to
	// the upstream (FederationBackend), listed URIs or not (templates).
	fedResources map[string]spec.Ref
	// problems are the federated tools the catalog could not expose.
	problems map[spec.Ref][]string
	// compiled is what each Tool object gave, for the next catalog to
	// reuse (WithPrevious). Read only once built.
	compiled map[*spec.Object]*compiledObject

	// granted caches the views of callers with Grants, by tenant and
	// Grants.Key; bounded by maxGrantViews (beyond, views are computed per
	// request rather than cached).
	granted  sync.Map // string -> *view
	nGranted atomic.Int32
}

// maxGrantViews bounds the cached per-grants views of one catalog. A key
// is typically a consumer with its credential's kind and scopes, so this
// covers thousands of agents; the cache dies with the catalog.
const maxGrantViews = 4096

// view is what one audience sees: platform tools first, then its tools by
// name; the same for resources. Its encoded lists are built on first use
// (lists): a catalog of 20,000 tools carries no tools/list bytes for the
// tenants and admins that never list them, and an apply does not pay for
// encoding them.
type view struct {
	tools     []*Tool
	resources []*resource

	once     sync.Once
	toolList encodedList
	resList  encodedList
}

// lists returns v with its encoded lists built.
func (v *view) lists() *view {
	v.once.Do(v.encode)
	return v
}

func (v *view) encode() {
	size := 0
	for _, t := range v.tools {
		size += 160 + len(t.Name) + len(t.Title)*2 + len(t.Description) + len(t.InputSchema) + len(t.OutputSchema)
	}
	l := &v.toolList
	l.grow(size, len(v.tools))
	for _, t := range v.tools {
		l.begin()
		l.buf = encodeTool(l.buf, t)
		l.finish()
	}
	l.seal()
	r := &v.resList
	r.grow(0, len(v.resources))
	for _, res := range v.resources {
		r.begin()
		r.buf = res.appendEntry(r.buf)
		r.finish()
	}
	r.seal()
}

// encodedList holds JSON array elements back to back, comma-separated, so
// that elements [i, j) are list.buf[start[i]:end[j-1]].
type encodedList struct {
	buf    []byte
	start  []int32
	end    []int32
	digest uint64
}

func (l *encodedList) grow(bytes, n int) {
	l.buf = make([]byte, 0, bytes)
	l.start = make([]int32, 0, n)
	l.end = make([]int32, 0, n)
}

// begin starts an element, which the caller appends to l.buf before
// calling finish.
func (l *encodedList) begin() {
	if len(l.start) > 0 {
		l.buf = append(l.buf, ',')
	}
	l.start = append(l.start, int32(len(l.buf)))
}

func (l *encodedList) finish() { l.end = append(l.end, int32(len(l.buf))) }

func (l *encodedList) seal() {
	h := fnv.New64a()
	h.Write(l.buf)
	l.digest = h.Sum64()
}

// page returns the encoded elements [from, to).
func (l *encodedList) page(from, to int) []byte {
	if from >= to {
		return nil
	}
	return l.buf[l.start[from]:l.end[to-1]]
}

func (l *encodedList) len() int { return len(l.start) }

// CatalogOption customizes BuildCatalog.
type CatalogOption func(*catalogConfig)

type catalogConfig struct {
	openAPI    func(ref spec.Ref) ([]byte, bool)
	handles    func(*Tool) any
	federation Federation
	prev       *Catalog
	keep       func(*Tool) bool
}

// WithKeep lets BuildCatalog share, rather than copy, the tools prev
// (WithPrevious) compiled from an object given again, when keep says the
// tool's Handle is still right for the new catalog: the same *Tool, Handle
// included, then serves both catalogs, and WithHandles is not called for
// it. An object's tools are shared all or none.
func WithKeep(keep func(prev *Tool) bool) CatalogOption {
	return func(c *catalogConfig) { c.keep = keep }
}

// WithPrevious lets BuildCatalog take the tools prev compiled from an
// object it is given again, the very same *spec.Object, instead of
// compiling them: a revision's unchanged objects are the previous
// revision's, never modified, so a one-tool change compiles one Tool's
// operations, not 10,000 Tools'. The tools are copies, with Handle set
// anew (WithHandles); what prev serves is not touched.
func WithPrevious(prev *Catalog) CatalogOption {
	return func(c *catalogConfig) { c.prev = prev }
}

// WithOpenAPI supplies the OpenAPI document of a Tool that has an `openapi:`
// source (the spec loader has it); it is served as a resource.
func WithOpenAPI(fn func(ref spec.Ref) (doc []byte, ok bool)) CatalogOption {
	return func(c *catalogConfig) { c.openAPI = fn }
}

// WithHandles sets Tool.Handle for every compiled tool (e.g. the proxy
// route the daemon will call through).
func WithHandles(fn func(*Tool) any) CatalogOption {
	return func(c *catalogConfig) { c.handles = fn }
}

// Revision returns the configuration revision the catalog was built from.
func (c *Catalog) Revision() int64 { return c.revision }

// Len returns the number of tenant tools (platform tools excluded).
func (c *Catalog) Len() int { return len(c.tools) }

// Lookup returns the tool called name if caller may see it (its tenant's,
// and allowed by its Grants).
func (c *Catalog) Lookup(caller Caller, name string) (*Tool, bool) {
	if t := platformByName(name); t != nil {
		return t, true
	}
	t, ok := c.tools[name]
	if !ok || (!caller.Admin && t.Tenant != caller.Tenant) {
		return nil, false
	}
	if !caller.Admin && caller.Grants != nil && !caller.Grants.Allows(t) {
		return nil, false
	}
	return t, true
}

// AuthorizationServers returns the issuers of tenant's tokens, or of every
// tenant when tenant is "".
func (c *Catalog) AuthorizationServers(tenant string) []string {
	return c.issuers[tenant]
}

func (c *Catalog) viewFor(caller Caller) *view {
	if caller.Admin {
		return c.admin
	}
	v, ok := c.tenants[caller.Tenant]
	if !ok {
		return c.platform
	}
	if caller.Grants == nil {
		return v
	}
	key := caller.Tenant + "\x00" + caller.Grants.Key()
	if gv, ok := c.granted.Load(key); ok {
		return gv.(*view)
	}
	gv := v.filter(caller.Grants)
	if c.nGranted.Load() < maxGrantViews {
		if _, loaded := c.granted.LoadOrStore(key, gv); !loaded {
			c.nGranted.Add(1)
		}
	}
	return gv
}

// filter returns the part of v that g allows: the platform tools, the
// allowed tools, and the resources of Tool objects with an allowed
// operation. When g allows everything, v itself (nothing copied).
func (v *view) filter(g Grants) *view {
	tools := make([]*Tool, 0, len(v.tools))
	objects := map[spec.Ref]bool{}
	for _, t := range v.tools {
		if t.platform != notPlatform || g.Allows(t) {
			tools = append(tools, t)
			objects[t.Ref] = true
		}
	}
	res := make([]*resource, 0, len(v.resources))
	for _, r := range v.resources {
		if objects[r.ref] {
			res = append(res, r)
		}
	}
	if len(tools) == len(v.tools) && len(res) == len(v.resources) {
		return v
	}
	return buildView(tools, res)
}

// maxToolName is stoa's limit on MCP tool names (MCP suggests at most 128;
// stoa keeps 64 so names fit every client).
const maxToolName = spec.MaxMCPNameLen

// BuildCatalog compiles the Tool objects of a revision into a Catalog.
// Objects of other kinds are ignored except Tenant, whose identity issuer
// is listed as an authorization server. It fails, changing nothing, on an
// invalid tool name, a name used twice (names must be unique across tenants
// because admins see all of them), an invalid path or `in` mapping, or an
// input schema that does not compile. The tools of federated MCP servers
// (WithFederation) never fail a build: one whose name is invalid or taken
// (an operation keeps its name) is left out and reported (Problems).
func BuildCatalog(revision int64, objs []*spec.Object, opts ...CatalogOption) (*Catalog, error) {
	var cfg catalogConfig
	for _, o := range opts {
		o(&cfg)
	}
	c := &Catalog{
		revision:  revision,
		tools:     map[string]*Tool{},
		tenants:   map[string]*view{},
		resources: map[string]*resource{},
		issuers:   map[string][]string{},

		fedResources: map[string]spec.Ref{},
		problems:     map[spec.Ref][]string{},
		compiled:     make(map[*spec.Object]*compiledObject, len(objs)),
	}
	if cfg.prev != nil {
		// About as many as before: no growing the maps.
		c.tools = make(map[string]*Tool, len(cfg.prev.tools))
		c.resources = make(map[string]*resource, len(cfg.prev.resources))
	}
	// A revision's objects come sorted: then they are taken as they are.
	sorted := objs
	if !refSorted(objs) {
		sorted = slices.Clone(objs)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Ref().Less(sorted[j].Ref()) })
	}
	sc := newSchemaCompiler()
	var all []*Tool
	var allRes []*resource
	var federated []fedSource
	addIssuer := func(tenant, iss string) {
		if iss != "" && !slices.Contains(c.issuers[tenant], iss) {
			c.issuers[tenant] = append(c.issuers[tenant], iss)
		}
	}
	for _, o := range sorted {
		switch s := o.Spec.(type) {
		case *spec.TenantSpec:
			if s.Identity != nil {
				addIssuer(o.Metadata.Name, s.Identity.Issuer)
			}
			if _, ok := c.tenants[o.Metadata.Name]; !ok {
				c.tenants[o.Metadata.Name] = &view{}
			}
		case *spec.ToolSpec:
			tenant := o.Metadata.Namespace
			if _, ok := c.tenants[tenant]; !ok {
				c.tenants[tenant] = &view{}
			}
			if s.Auth != nil {
				addIssuer(tenant, s.Auth.Issuer)
			}
			if s.Protocol == spec.ProtocolMCP {
				if s.MCP != nil {
					federated = append(federated, fedSource{o, s})
				}
				continue
			}
			co, kept, err := cfg.compile(o, s, sc)
			if err != nil {
				return nil, err
			}
			c.compiled[o] = co
			for _, t := range co.tools {
				if prev, dup := c.tools[t.Name]; dup {
					return nil, fmt.Errorf("build mcp catalog: %s: tool name %q is already used by %s; set a distinct mcpName", o.Ref(), t.Name, prev.Ref)
				}
				if cfg.handles != nil && !kept {
					t.Handle = cfg.handles(t)
				}
				c.tools[t.Name] = t
				all = append(all, t)
			}
			for _, r := range co.resources {
				c.resources[r.uri] = r
				allRes = append(allRes, r)
			}
		}
	}
	fedTools, fedRes := c.addFederated(federated, cfg.federation, sc, &cfg)
	all = append(all, fedTools...)
	allRes = append(allRes, fedRes...)
	var everyIssuer []string
	for _, iss := range c.issuers {
		everyIssuer = append(everyIssuer, iss...)
	}
	for _, i := range everyIssuer {
		addIssuer("", i)
	}
	sort.Strings(c.issuers[""])
	byName := func(a, b *Tool) int { return strings.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(all, byName) {
		slices.SortFunc(all, byName)
	}
	slices.SortFunc(allRes, func(a, b *resource) int { return strings.Compare(a.uri, b.uri) })
	perTenant := map[string][]*Tool{}
	for _, t := range all {
		perTenant[t.Tenant] = append(perTenant[t.Tenant], t)
	}
	perTenantRes := map[string][]*resource{}
	for _, r := range allRes {
		perTenantRes[r.tenant] = append(perTenantRes[r.tenant], r)
	}
	for tenant := range c.tenants {
		c.tenants[tenant] = newView(perTenant[tenant], perTenantRes[tenant])
	}
	c.admin = newView(all, allRes)
	c.platform = newView(nil, nil)
	return c, nil
}

// refSorted reports whether objs are in non-decreasing Ref order (what a
// stable sort would leave as it is).
func refSorted(objs []*spec.Object) bool {
	for i := 1; i < len(objs); i++ {
		if objs[i].Ref().Less(objs[i-1].Ref()) {
			return false
		}
	}
	return true
}

// compiledObject is what one Tool object gives a catalog: its tools (one
// per operation) and its resources. Resources are immutable once encoded
// (a document's text is generated once, on its first read), so catalogs
// share them; tools are copied, for their handles.
type compiledObject struct {
	tools     []*Tool
	resources []*resource
}

// compile returns what Tool object o gives: the tools and the resources
// the previous catalog had from o itself (kept: shared as they are, see
// WithKeep; else the tools copied), or compiled now.
func (cfg *catalogConfig) compile(o *spec.Object, s *spec.ToolSpec, sc *schemaCompiler) (co *compiledObject, kept bool, err error) {
	if cfg.prev != nil {
		if prev, ok := cfg.prev.compiled[o]; ok {
			if cfg.keep != nil && keepAll(prev.tools, cfg.keep) {
				return prev, true, nil
			}
			co := &compiledObject{tools: make([]*Tool, len(prev.tools)), resources: prev.resources}
			for i, p := range prev.tools {
				t := *p
				t.Handle = nil
				co.tools[i] = &t
			}
			return co, false, nil
		}
	}
	co = &compiledObject{tools: make([]*Tool, 0, len(s.Operations))}
	for i := range s.Operations {
		t, err := compileTool(o, s, &s.Operations[i], sc)
		if err != nil {
			return nil, false, fmt.Errorf("build mcp catalog: %s: operation %q: %w", o.Ref(), s.Operations[i].Name, err)
		}
		co.tools = append(co.tools, t)
	}
	var doc []byte
	if s.OpenAPI != "" && cfg.openAPI != nil {
		doc, _ = cfg.openAPI(o.Ref())
	}
	co.resources = toolResources(o, s, doc)
	return co, false, nil
}

// keepAll asks keep about every tool, and says whether all may be kept.
func keepAll(tools []*Tool, keep func(*Tool) bool) bool {
	for _, t := range tools {
		if !keep(t) {
			return false
		}
	}
	return true
}

func newView(tools []*Tool, res []*resource) *view {
	all := make([]*Tool, 0, len(platformTools)+len(tools))
	all = append(all, platformTools...)
	return buildView(append(all, tools...), res)
}

// buildView returns a view of exactly these tools (platform tools
// included) and resources; its lists are encoded on first use.
func buildView(tools []*Tool, res []*resource) *view {
	return &view{tools: tools, resources: res}
}

func validToolName(name string) error {
	if name == "" || len(name) > maxToolName {
		return fmt.Errorf("tool name %q must be 1 to %d characters; set a shorter mcpName", name, maxToolName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("tool name %q may only contain A-Z, a-z, 0-9, '_' and '-'", name)
		}
	}
	if strings.HasPrefix(name, platformPrefix) {
		return fmt.Errorf("tool name %q: the %s prefix is reserved for platform tools", name, platformPrefix)
	}
	return nil
}

func compileTool(o *spec.Object, s *spec.ToolSpec, op *spec.Operation, sc *schemaCompiler) (*Tool, error) {
	tenant := o.Metadata.Namespace
	name := spec.MCPToolName(tenant, o.Metadata.Name, op)
	if err := validToolName(name); err != nil {
		return nil, err
	}
	plan, err := argmap.Compile(op.Method, op.Path, op.In)
	if err != nil {
		return nil, err
	}
	input := op.Input
	if input == nil {
		input = defaultInputSchema(plan.Placeholders())
	}
	// What the agent reads and what validates its arguments is the same
	// stripped schema. Walking a schema costs more than encoding it, and
	// nearly every schema is plain ASCII: walk only when the encoding has
	// a byte or an escape an invisible character could be behind.
	schemaJSON, encErr := encodeSchema(input)
	if encErr != nil || mayHaveInvisible(schemaJSON) {
		if v, changed, err := stripSchema(input); err != nil {
			return nil, fmt.Errorf("input schema: %w", err)
		} else if changed {
			input = v.(map[string]any)
			schemaJSON, encErr = encodeSchema(input)
		}
	}
	if pl := plan.Payload(); pl != "" {
		props, _ := input["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for name := range props {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if name != pl && plan.LocationOf(name) == argmap.Body {
				return nil, fmt.Errorf("argument %q would be a body member, but %q is the whole body (in: payload); set in: query or header for it", name, pl)
			}
		}
	}
	if encErr != nil {
		return nil, fmt.Errorf("encode input schema: %w", encErr)
	}
	cs, err := sc.compile(schemaJSON)
	if err != nil {
		return nil, err
	}
	schemaJSON = cs.source // one copy per distinct schema
	t := &Tool{
		Name:         name,
		Title:        stripInvisible(op.Title),
		Description:  stripInvisible(op.Description),
		Tenant:       tenant,
		InputSchema:  schemaJSON,
		Annotations:  resolveAnnotations(plan.Method(), op.Annotations),
		Ref:          o.Ref(),
		Spec:         s,
		Operation:    op,
		plan:         plan,
		schema:       cs,
		paramHeaders: paramHeaders(input, nil, nil),
	}
	if t.Description == "" {
		t.Description = fmt.Sprintf("%s %s on the %s API of tenant %s.", plan.Method(), op.Path, o.Metadata.Name, tenant)
		if s.Description != "" {
			t.Description += " " + s.Description
		}
		t.Description = stripInvisible(t.Description)
	}
	for _, tag := range append(slices.Clone(s.Tags), op.Tags...) {
		if tag = stripInvisible(tag); !slices.Contains(t.Tags, tag) {
			t.Tags = append(t.Tags, tag)
		}
	}
	return t, nil
}

// resolveAnnotations applies the method defaults of spec.Default (so the
// result is the same whether or not the objects were defaulted), then the
// operation's explicit hints.
func resolveAnnotations(method string, a *spec.Annotations) Annotations {
	r := Annotations{OpenWorld: true}
	switch method {
	case "GET", "HEAD", "OPTIONS":
		r.ReadOnly, r.Idempotent = true, true
	case "PUT":
		r.Idempotent = true
	case "DELETE":
		r.Idempotent, r.Destructive = true, true
	}
	if a != nil {
		set := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&r.ReadOnly, a.ReadOnly)
		set(&r.Destructive, a.Destructive)
		set(&r.Idempotent, a.Idempotent)
		set(&r.OpenWorld, a.OpenWorld)
	}
	return r
}

// encodeTool appends the tools/list entry of t to b.
func encodeTool(b []byte, t *Tool) []byte {
	b = append(b, `{"name":`...)
	b = rpc.AppendString(b, t.Name)
	if t.Title != "" {
		b = append(b, `,"title":`...)
		b = rpc.AppendString(b, t.Title)
	}
	b = append(b, `,"description":`...)
	b = rpc.AppendString(b, t.Description)
	b = append(b, `,"inputSchema":`...)
	b = append(b, t.InputSchema...)
	if len(t.OutputSchema) > 0 {
		b = append(b, `,"outputSchema":`...)
		b = append(b, t.OutputSchema...)
	}
	b = append(b, `,"annotations":{`...)
	if t.Title != "" {
		b = append(b, `"title":`...)
		b = rpc.AppendString(b, t.Title)
		b = append(b, ',')
	}
	b = appendBoolField(b, "readOnlyHint", t.Annotations.ReadOnly)
	if !t.Annotations.ReadOnly {
		// Meaningful only when readOnlyHint is false (ToolAnnotations).
		b = append(b, ',')
		b = appendBoolField(b, "destructiveHint", t.Annotations.Destructive)
		b = append(b, ',')
		b = appendBoolField(b, "idempotentHint", t.Annotations.Idempotent)
	}
	b = append(b, ',')
	b = appendBoolField(b, "openWorldHint", t.Annotations.OpenWorld)
	b = append(b, '}')
	if len(t.Tags) > 0 {
		b = append(b, `,"_meta":{"io.stoa/tags":[`...)
		for i, tag := range t.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = rpc.AppendString(b, tag)
		}
		b = append(b, "]}"...)
	}
	return append(b, '}')
}

func appendBoolField(b []byte, name string, v bool) []byte {
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}
