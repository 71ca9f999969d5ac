package spec

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ValidateOptions tunes Validate.
type ValidateOptions struct {
	// Live objects already applied in the daemon; references may resolve to
	// them, and uniqueness (routes, MCP names, one Gateway) is checked
	// against those the validated set does not replace. Callers that prune
	// pass only the objects that survive.
	Live []*Object
	// SkipReferences skips cross-object reference checks (the CLI does this
	// for apply/diff and lets the daemon, which knows the live state, check
	// them).
	SkipReferences bool
	// Offline says the objects are files checked without the live state
	// (stoa validate): an object they refer to that is not among them may
	// well exist in stoad, so the reference is a note — "not defined in
	// these files" — that diff and apply check against the live state. The
	// same holds for route grants when the files hold no Gateway.
	Offline bool
	// StrictRefs, with Offline, makes those notes errors: the files must be
	// complete on their own.
	StrictRefs bool
}

// Validate checks objects semantically (call it after Default) and returns
// every problem, sorted by position. Diagnostics carry Object and Path; when
// the object has a Source, File, Line, Column and SourceLine are filled.
// Problems the loader already reported (a field that failed to decode) are
// not repeated.
func Validate(objs []*Object, opts ValidateOptions) Diagnostics {
	v := &validator{opts: opts, objs: objs, byRef: make(map[Ref]*Object, len(objs)), shadowed: map[*Object]bool{}}
	for _, o := range objs {
		if o == nil {
			continue
		}
		first, dup := v.byRef[o.Ref()]
		if dup && o.Metadata.Name != "" {
			v.errorf(o, "", "remove one of them or rename it",
				"duplicate %s: also defined at %s", o.Ref(), where(first))
			v.shadowed[o] = true
			continue
		}
		if dup {
			v.shadowed[first] = true
		}
		v.byRef[o.Ref()] = o
	}
	v.live = make(map[Ref]*Object, len(opts.Live))
	for _, o := range opts.Live {
		if o == nil {
			continue
		}
		if _, replaced := v.byRef[o.Ref()]; !replaced {
			v.live[o.Ref()] = o
		}
	}
	v.liveList = make([]*Object, 0, len(v.live))
	for _, o := range opts.Live {
		if o != nil && v.live[o.Ref()] == o {
			v.liveList = append(v.liveList, o)
		}
	}
	for _, o := range objs {
		if o != nil {
			v.object(o)
		}
	}
	v.crossObject(objs)
	v.routeOwnership(objs)
	v.stdioGrants(objs)
	v.publicTools(objs)
	return v.finish()
}

// Locate fills File, Line, Column and SourceLine of diagnostics that have
// Object and Path but no File, from the Sources of objs (the CLI uses it for
// diagnostics returned by the daemon).
func Locate(objs []*Object, diags Diagnostics) {
	byRef := map[Ref]*Object{}
	for _, o := range objs {
		if o != nil && o.Source != nil {
			if _, ok := byRef[o.Ref()]; !ok {
				byRef[o.Ref()] = o
			}
		}
	}
	for _, d := range diags {
		if d == nil {
			continue
		}
		for i := range d.Related {
			r := &d.Related[i]
			if r.File != "" || r.Object == nil {
				continue
			}
			if o := byRef[*r.Object]; o != nil {
				r.File = o.Source.File
				r.Line, r.Column, _ = o.Source.Position(r.Path, false)
			}
		}
		if d.File != "" || d.Object == nil {
			continue
		}
		if o := byRef[*d.Object]; o != nil {
			locate(d, o, false)
		}
	}
}

// locate fills d's position from o's Source.
func locate(d *Diagnostic, o *Object, key bool) {
	s := o.Source
	if s == nil {
		return
	}
	d.File = s.File
	if s.doc == nil {
		d.Line, d.Column = s.Line, s.Column
		return
	}
	d.Line, d.Column, d.SourceLine = s.Position(d.Path, key)
}

// where renders an object's location for messages citing it.
func where(o *Object) string {
	if o.Source == nil {
		return o.Ref().String() + " (live)"
	}
	return fmt.Sprintf("%s:%d:%d", o.Source.File, o.Source.Line, o.Source.Column)
}

// validator accumulates diagnostics for one Validate call.
type validator struct {
	opts     ValidateOptions
	objs     []*Object        // as given
	shadowed map[*Object]bool // objects of objs that another with the same ref replaces
	byRef    map[Ref]*Object  // validated objects, first of each ref
	live     map[Ref]*Object  // live objects not replaced by validated ones
	// liveList is live in the order ValidateOptions.Live gave it, the
	// last of each ref.
	liveList []*Object
	diags    []pending
	names    map[Kind]map[string][]string // kind -> namespace -> names, built on demand

	hazardSev Severity // severity of text hazards, from the Gateway (see hazardSeverity)

	noted    map[Ref]int // missing objects noted offline -> index of the note in diags
	noteRefs map[int]int // note index -> references to the object
}

type pending struct {
	d       *Diagnostic
	obj     *Object
	key     bool
	find    string    // text to point at, when it is found after the field's position
	related []relSite // other places involved
	// refine moves the diagnostic from the field's position to a place
	// inside its value (a character of a policy expression).
	refine func(d *Diagnostic, s *Source)
}

// relSite is a Related place before it is positioned.
type relSite struct {
	obj  *Object
	path string
	msg  string
}

func (v *validator) add(o *Object, sev Severity, key bool, path, hint, msg string) *pending {
	ref := o.Ref()
	v.diags = append(v.diags, pending{
		d:   &Diagnostic{Object: &ref, Path: path, Message: msg, Hint: hint, Severity: sev},
		obj: o, key: key,
	})
	return &v.diags[len(v.diags)-1]
}

// errorf adds an error at path of o.
func (v *validator) errorf(o *Object, path, hint, format string, args ...any) {
	v.add(o, SeverityError, false, path, hint, fmt.Sprintf(format, args...))
}

// keyErrorf adds an error at the key of the field at path: for a field
// that should not be there at all.
func (v *validator) keyErrorf(o *Object, path, hint, format string, args ...any) {
	v.add(o, SeverityError, true, path, hint, fmt.Sprintf(format, args...))
}

// warnf adds a warning at path of o.
func (v *validator) warnf(o *Object, path, hint, format string, args ...any) {
	v.add(o, SeverityWarning, false, path, hint, fmt.Sprintf(format, args...))
}

// finish drops problems the loader already reported, positions the rest
// and sorts them.
func (v *validator) finish() Diagnostics {
	out := make(Diagnostics, 0, len(v.diags))
	for i, p := range v.diags {
		if n := v.noteRefs[i]; n > 1 {
			p.d.Message = strings.Replace(p.d.Message, " is not defined in these files;",
				fmt.Sprintf(" is not defined in these files (%d references);", n), 1)
		}
		if s := p.obj.Source; s != nil && s.isBad(p.d.Path) {
			continue
		}
		locate(p.d, p.obj, p.key)
		if p.refine != nil && p.d.Line > 0 && p.obj.Source != nil {
			p.refine(p.d, p.obj.Source)
		}
		if p.find != "" && p.d.Line > 0 && p.obj.Source != nil {
			if line, col, text, ok := p.obj.Source.find(p.d.Line, p.d.Column, p.find); ok {
				p.d.Line, p.d.Column, p.d.SourceLine = line, col, text
			}
		}
		for _, r := range p.related {
			ref := r.obj.Ref()
			rel := Related{Object: &ref, Path: r.path, Message: r.msg}
			if s := r.obj.Source; s != nil {
				rel.File = s.File
				rel.Line, rel.Column, _ = s.Position(r.path, false)
			}
			p.d.Related = append(p.d.Related, rel)
		}
		out = append(out, p.d)
	}
	out.Sort()
	return out
}

// lookup finds an object among the validated and the live ones.
func (v *validator) lookup(r Ref) *Object {
	if o := v.byRef[r]; o != nil {
		return o
	}
	return v.live[r]
}

// nameIndex lists the names of kind k in namespace ns (for suggestions).
func (v *validator) nameIndex(k Kind, ns string) []string {
	if v.names == nil {
		v.names = map[Kind]map[string][]string{}
		add := func(o *Object) {
			m := v.names[o.Kind]
			if m == nil {
				m = map[string][]string{}
				v.names[o.Kind] = m
			}
			m[o.Metadata.Namespace] = append(m[o.Metadata.Namespace], o.Metadata.Name)
		}
		for _, o := range v.byRef {
			add(o)
		}
		for _, o := range v.live {
			add(o)
		}
		for _, m := range v.names {
			for _, l := range m {
				sort.Strings(l)
			}
		}
	}
	return v.names[k][ns]
}

// ref checks that o's reference at path to kind k named name resolves.
func (v *validator) ref(o *Object, path string, k Kind, name string) {
	if v.opts.SkipReferences || name == "" {
		return
	}
	ns := o.Metadata.Namespace
	if !k.Namespaced() {
		ns = ""
	}
	if v.lookup(Ref{Kind: k, Namespace: ns, Name: name}) != nil {
		return
	}
	v.missing(o, path, Ref{Kind: k, Namespace: ns, Name: name})
}

// missing reports that o refers at path to r, which is not among the
// objects. Offline that is a note (an error with StrictRefs): r may exist
// in the live state, which diff and apply check.
func (v *validator) missing(o *Object, path string, r Ref) {
	what := fmt.Sprintf("%s %q", r.Kind, r.Name)
	if r.Namespace != "" {
		what += " of tenant " + r.Namespace
	}
	suggestion := ""
	if s := suggest(r.Name, v.nameIndex(r.Kind, r.Namespace)); s != "" {
		suggestion = fmt.Sprintf("did you mean %q?", s)
	}
	if v.opts.Offline {
		if v.opts.StrictRefs {
			hint := "add it to the files given with -f, or drop --strict-refs to let diff and apply check it against the live state"
			if suggestion != "" {
				hint = suggestion + " Otherwise " + hint
			}
			v.errorf(o, path, hint, "%s is not defined in these files", what)
			return
		}
		// One note per missing object, at its first reference: a file
		// of a live tenant's tools would otherwise repeat it per tool.
		if i, seen := v.noted[r]; seen {
			v.noteRefs[i]++
			return
		}
		if v.noted == nil {
			v.noted, v.noteRefs = map[Ref]int{}, map[int]int{}
		}
		v.noted[r] = len(v.diags)
		v.noteRefs[len(v.diags)] = 1
		v.add(o, SeverityNote, false, path, suggestion,
			what+" is not defined in these files; checked against the live state by diff and apply")
		return
	}
	hint := fmt.Sprintf("define a %s named %q", r.Kind, r.Name)
	if r.Namespace != "" {
		hint += fmt.Sprintf(" in tenant %s", r.Namespace)
	}
	if suggestion != "" {
		hint = suggestion
	}
	if r.Namespace != "" {
		v.errorf(o, path, hint, "%s %q not found in tenant %s", r.Kind, r.Name, r.Namespace)
	} else {
		v.errorf(o, path, hint, "%s %q not found", r.Kind, r.Name)
	}
}

// tenantOf returns the Tenant object of o's namespace, if known.
func (v *validator) tenantOf(o *Object) *TenantSpec {
	t := v.lookup(Ref{Kind: KindTenant, Name: o.Metadata.Namespace})
	if t == nil {
		return nil
	}
	s, _ := t.Spec.(*TenantSpec)
	return s
}

// object runs the checks of one object.
func (v *validator) object(o *Object) {
	if !slices.Contains(SupportedAPIVersions, o.APIVersion) {
		v.errorf(o, "apiVersion", "supported: "+strings.Join(SupportedAPIVersions, ", "),
			"unknown apiVersion %q", o.APIVersion)
	}
	v.metadata(o)
	if o.Spec == nil {
		v.errorf(o, "spec", "", "missing spec")
		return
	}
	if o.Spec.Kind() != o.Kind {
		v.errorf(o, "kind", "", "kind %s does not match its %s spec", o.Kind, o.Spec.Kind())
		return
	}
	switch s := o.Spec.(type) {
	case *GatewaySpec:
		v.gateway(o, s)
	case *TenantSpec:
		v.tenant(o, s)
	case *ToolSpec:
		v.tool(o, s)
	case *ToolSetSpec:
		v.toolSet(o, s)
	case *PlanSpec:
		v.plan(o, s)
	case *ConsumerSpec:
		v.consumer(o, s)
	case *SubscriptionSpec:
		v.subscription(o, s)
	case *WebhookSpec:
		v.webhook(o, s)
	}
}

// metadata checks name, namespace, labels and annotation keys.
func (v *validator) metadata(o *Object) {
	m := &o.Metadata
	if why := checkDNSLabel(m.Name); why != "" {
		if m.Name == "" {
			v.errorf(o, "metadata.name", "every object needs a name", "missing metadata.name")
		} else {
			v.errorf(o, "metadata.name", dnsLabelHint(m.Name), "invalid name %q: %s", m.Name, why)
		}
	}
	if o.Kind.Namespaced() {
		switch why := checkDNSLabel(m.Namespace); {
		case m.Namespace == "":
			v.errorf(o, "metadata.namespace", "set metadata.namespace to the tenant that owns it",
				"missing metadata.namespace: a %s belongs to a tenant", o.Kind)
		case why != "":
			v.errorf(o, "metadata.namespace", dnsLabelHint(m.Namespace), "invalid namespace %q: %s", m.Namespace, why)
		default:
			v.ref(o, "metadata.namespace", KindTenant, m.Namespace)
		}
	} else if m.Namespace != "" {
		v.errorf(o, "metadata.namespace", "remove metadata.namespace",
			"a %s is cluster-scoped and has no namespace", o.Kind)
	}
	for _, k := range sortedKeys(m.Labels) {
		p := "metadata.labels" + pathKey(k)
		if why := checkLabelKey(k); why != "" {
			v.add(o, SeverityError, true, p, "label keys are [prefix/]name, e.g. team or example.com/team",
				fmt.Sprintf("invalid label key %q: %s", k, why))
		}
		if why := checkLabelValue(m.Labels[k]); why != "" {
			v.errorf(o, p, "", "invalid value for label %q: %s", k, why)
		}
	}
	for _, k := range sortedKeys(m.Annotations) {
		if why := checkLabelKey(k); why != "" {
			v.add(o, SeverityError, true, "metadata.annotations"+pathKey(k),
				"annotation keys are [prefix/]name, e.g. note or example.com/note",
				fmt.Sprintf("invalid annotation key %q: %s", k, why))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// rate checks a rate limit at path. The rate itself was parsed when it
// was decoded (an invalid one is the decoder's error).
func (v *validator) rate(o *Object, path string, r *RateLimit) {
	if r == nil {
		return
	}
	if r.Rate.IsZero() {
		v.errorf(o, path+".rate", "write a rate as N/s, N/min, N/h or N/d, e.g. 100/s", "missing rate")
	}
	if r.Burst < 0 {
		v.errorf(o, path+".burst", "burst is a count of requests, 0 or more", "burst must not be negative")
	}
}

// rateReason strips the rate itself from a parseRate error (the message
// already quotes it).
func rateReason(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "rate ") {
		return after
	}
	return msg
}

// duration checks an optional duration at path: when set, it must be
// positive (its syntax was checked when it was decoded).
func (v *validator) duration(o *Object, path string, d Duration) {
	if d.IsZero() {
		return
	}
	if d.D() <= 0 {
		v.errorf(o, path, "use a positive duration such as 5s", "duration %q %s", d, errNotPositive)
	}
}

// secretRef checks that exactly one of env and file is set.
func (v *validator) secretRef(o *Object, path string, r SecretRef) {
	switch {
	case r.Env == "" && r.File == "":
		v.errorf(o, path, "for example secretRef: {env: MY_SECRET} or secretRef: {file: /run/secrets/x}",
			"missing secretRef: set env or file")
	case r.Env != "" && r.File != "":
		v.errorf(o, path, "keep either env or file", "secretRef sets both env and file; set exactly one")
	case r.Env != "" && !isEnvName(r.Env):
		v.errorf(o, path+".env", "environment variable names are letters, digits and '_', not starting with a digit",
			"invalid environment variable name %q", r.Env)
	}
}

func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// oneOf checks that s is one of allowed (when set) and suggests the closest.
func (v *validator) oneOf(o *Object, path, what, s string, allowed ...string) bool {
	if s == "" || slices.Contains(allowed, s) {
		return true
	}
	hint := "one of " + strings.Join(allowed, ", ")
	if sg := suggest(s, allowed); sg != "" {
		hint = fmt.Sprintf("did you mean %q?", sg)
	}
	v.errorf(o, path, hint, "unknown %s %q", what, s)
	return false
}

// itemPath renders path[i].
func itemPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// stringList checks a list of plain strings: none empty, no duplicates.
func (v *validator) stringList(o *Object, path, what string, list []string) {
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			v.errorf(o, itemPath(path, i), "remove the empty entry", "empty %s", what)
			continue
		}
		for j := 0; j < i; j++ {
			if list[j] == s {
				v.errorf(o, itemPath(path, i), "remove one of them", "duplicate %s %q (also %s)", what, s, itemPath(path, j))
				break
			}
		}
	}
}
