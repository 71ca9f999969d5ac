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
}

// Validate checks objects semantically (call it after Default) and returns
// every problem, sorted by position. Diagnostics carry Object and Path; when
// the object has a Source, File, Line, Column and SourceLine are filled.
// Problems the loader already reported (a field that failed to decode) are
// not repeated.
func Validate(objs []*Object, opts ValidateOptions) Diagnostics {
	v := &validator{opts: opts, byRef: make(map[Ref]*Object, len(objs))}
	for _, o := range objs {
		if o == nil {
			continue
		}
		if first, dup := v.byRef[o.Ref()]; dup && o.Metadata.Name != "" {
			v.errorf(o, "", "remove one of them or rename it",
				"duplicate %s: also defined at %s", o.Ref(), where(first))
			continue
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
	for _, o := range objs {
		if o != nil {
			v.object(o)
		}
	}
	v.crossObject(objs)
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
		if d == nil || d.File != "" || d.Object == nil {
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
	opts  ValidateOptions
	byRef map[Ref]*Object // validated objects, first of each ref
	live  map[Ref]*Object // live objects not replaced by validated ones
	diags []pending
	names map[Kind]map[string][]string // kind -> namespace -> names, built on demand
}

type pending struct {
	d   *Diagnostic
	obj *Object
	key bool
}

func (v *validator) add(o *Object, sev Severity, key bool, path, hint, msg string) {
	ref := o.Ref()
	v.diags = append(v.diags, pending{
		d:   &Diagnostic{Object: &ref, Path: path, Message: msg, Hint: hint, Severity: sev},
		obj: o, key: key,
	})
}

// errorf adds an error at path of o.
func (v *validator) errorf(o *Object, path, hint, format string, args ...any) {
	v.add(o, SeverityError, false, path, hint, fmt.Sprintf(format, args...))
}

// warnf adds a warning at path of o.
func (v *validator) warnf(o *Object, path, hint, format string, args ...any) {
	v.add(o, SeverityWarning, false, path, hint, fmt.Sprintf(format, args...))
}

// finish drops problems the loader already reported, positions the rest
// and sorts them.
func (v *validator) finish() Diagnostics {
	out := make(Diagnostics, 0, len(v.diags))
	for _, p := range v.diags {
		if s := p.obj.Source; s != nil && s.doc != nil && s.doc.isBad(p.d.Path) {
			continue
		}
		locate(p.d, p.obj, p.key)
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
	hint := fmt.Sprintf("define a %s named %q", k, name)
	if ns != "" {
		hint += fmt.Sprintf(" in namespace %s", ns)
	}
	if s := suggest(name, v.nameIndex(k, ns)); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	if ns != "" {
		v.errorf(o, path, hint, "%s %q not found in tenant %s", k, name, ns)
	} else {
		v.errorf(o, path, hint, "%s %q not found", k, name)
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
		case !v.opts.SkipReferences && v.lookup(Ref{Kind: KindTenant, Name: m.Namespace}) == nil:
			hint := fmt.Sprintf("define a Tenant named %q", m.Namespace)
			if s := suggest(m.Namespace, v.nameIndex(KindTenant, "")); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			}
			v.errorf(o, "metadata.namespace", hint, "tenant %q does not exist", m.Namespace)
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

// rate checks a rate limit at path.
func (v *validator) rate(o *Object, path string, r *RateLimit) {
	if r == nil {
		return
	}
	if r.Rate == "" {
		v.errorf(o, path+".rate", "write a rate as N/s, N/min, N/h or N/d, e.g. 100/s", "missing rate")
	} else if _, _, err := ParseRate(r.Rate); err != nil {
		v.errorf(o, path+".rate", rateHint(r.Rate), "invalid rate %q: %s", r.Rate, rateReason(err))
	}
	if r.Burst < 0 {
		v.errorf(o, path+".burst", "burst is a count of requests, 0 or more", "burst must not be negative")
	}
}

// rateReason strips the rate itself from a ParseRate error (the message
// already quotes it).
func rateReason(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "rate ") {
		return after
	}
	return msg
}

// duration checks an optional positive duration at path.
func (v *validator) duration(o *Object, path string, d Duration) {
	if d == "" {
		return
	}
	if _, err := positiveDuration(d); err != nil {
		if err == errNotPositive {
			v.errorf(o, path, "use a positive duration such as 5s", "duration %q must be positive", d)
			return
		}
		v.errorf(o, path, "use Go duration syntax with a unit, e.g. 500ms, 30s, 5m, 2h or 1d", "invalid duration %q", d)
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
