package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// GetOptions are the inputs of `stoa get`.
type GetOptions struct {
	F             *Factory
	Kind          spec.Kind // empty with AllKinds
	AllKinds      bool      // stoa get all
	Name          string
	Namespace     string
	AllNamespaces bool
	Selector      labelSelector
	Watch         bool
}

func newGetCmd(f *Factory) *cobra.Command {
	o := &GetOptions{F: f}
	cmd := &cobra.Command{
		Use:   "get (KIND [NAME] | all)",
		Short: "List live objects, or show one (defaults applied)",
		Long: `Get lists live objects of a kind (tenants, tools, toolsets, plans, consumers,
subscriptions, webhooks, gateways), or of every kind with "all". Without -n
it lists every tenant's objects; "get all -n TENANT" shows the tenant and
everything in it. -l selects by label (k=v, k!=v, k, !k; comma-separated,
all must hold).

-o yaml and -o json show objects with all defaults filled in: one object
when NAME is given, else one "kind: List" document of whole objects, which
stoa apply accepts again (for a spec set without defaults, use: stoa export).

-w/--watch prints the list, then every change as it is applied: table rows
with an EVENT column (ADDED, MODIFIED, DELETED), or for -o json/ndjson one
JSON line per change: {"type": "MODIFIED", "revision": 7, "object": {...}}.

"get dataplanes" lists a control plane's data planes (live state, not
specs): the revision each serves, its lag behind the control plane's, when
it was last heard from and its health; empty on a standalone stoad.`,
		Example: "  stoa get tools\n  stoa get tool billing-api -n acme -o yaml\n  stoa get all -n acme\n" +
			"  stoa get tools -A -l team=billing,tier!=canary\n  stoa get subscriptions -n acme --watch\n  stoa get dataplanes -o wide",
		Args: cobra.RangeArgs(1, 2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return append(kindNames(true), "all", "dataplanes"), cobra.ShellCompDirectiveNoFileComp
			}
			if len(args) > 1 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(f, args[0], o.Namespace, toComplete), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.EqualFold(args[0], "all") {
				if len(args) > 1 {
					return fmt.Errorf("get all takes no NAME (got %q); to show one object: stoa get KIND NAME", args[1])
				}
				o.AllKinds = true
			} else if isDataPlanes(args[0]) {
				if err := checkDataPlaneFlags(cmd); err != nil {
					return err
				}
				dp := &DataPlanesOptions{F: f}
				if len(args) > 1 {
					dp.Name = args[1]
				}
				return dp.Run(cmd.Context())
			} else {
				k, ok := spec.ParseKind(args[0])
				if !ok {
					return unknownKind(args[0], true)
				}
				o.Kind = k
			}
			if len(args) > 1 {
				o.Name = args[1]
			}
			if o.Name != "" && len(o.Selector) > 0 {
				return errors.New("get: pass NAME or -l SELECTOR, not both")
			}
			return o.Run(cmd.Context())
		},
	}
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list objects of every tenant")
	cmd.Flags().VarP(&selectorValue{sel: &o.Selector}, "selector", "l", "only objects whose labels match (k=v, k!=v, k, !k; comma-separated)")
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "after the list, print every change as it is applied")
	return cmd
}

// bindNamespace binds -n/--namespace, completed with the live tenants.
func bindNamespace(f *Factory, cmd *cobra.Command, ns *string) {
	cmd.Flags().StringVarP(ns, "namespace", "n", os.Getenv("STOA_NAMESPACE"), "tenant (env STOA_NAMESPACE)")
	_ = cmd.RegisterFlagCompletionFunc("namespace", completeTenants(f))
}

// kindNames are the kinds as users type them: lower case, plural or not.
func kindNames(plural bool) []string {
	var ks []string
	for _, k := range spec.Kinds {
		n := strings.ToLower(string(k))
		if plural {
			n += "s"
		}
		ks = append(ks, n)
	}
	return ks
}

func unknownKind(s string, withAll bool) error {
	cands := append(kindNames(true), kindNames(false)...)
	if withAll {
		cands = append(cands, "all")
	}
	list := strings.Join(kindNames(true), ", ")
	if withAll {
		list += ", or all"
	}
	return fmt.Errorf("unknown kind %q%s (kinds: %s)", s, didYouMean(s, cands), list)
}

// inTenant reports whether o belongs to tenant ns: the Tenant itself or an
// object in it.
func inTenant(o *spec.Object, ns string) bool {
	if o.Kind == spec.KindTenant {
		return o.Metadata.Name == ns
	}
	return o.Kind.Namespaced() && o.Metadata.Namespace == ns
}

// fetch reads the selected live objects, sorted in dependency order.
func (o *GetOptions) fetch(ctx context.Context) ([]*spec.Object, int64, error) {
	ns := o.Namespace
	if o.AllNamespaces || (!o.AllKinds && !o.Kind.Namespaced()) {
		ns = ""
	}
	serverNS := ns
	if o.AllKinds {
		serverNS = "" // the Tenant object itself has no namespace
	}
	list, err := o.F.Client().Objects(ctx, string(o.Kind), serverNS, o.Name)
	if err != nil {
		return nil, 0, err
	}
	items := list.Items[:0]
	for _, it := range list.Items {
		if o.AllKinds && ns != "" && !inTenant(it, ns) {
			continue
		}
		if !o.Selector.Matches(it.Metadata.Labels) {
			continue
		}
		items = append(items, it)
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Ref().Less(items[j].Ref()) })
	return items, list.Revision, nil
}

// Run lists or shows objects.
func (o *GetOptions) Run(ctx context.Context) error {
	if o.Watch {
		return o.watch(ctx)
	}
	items, _, err := o.fetch(ctx)
	if err != nil {
		return err
	}
	if o.Name != "" && len(items) > 1 {
		var tenants []string
		for _, it := range items {
			tenants = append(tenants, it.Metadata.Namespace)
		}
		return fmt.Errorf("%s %q exists in several tenants (%s): pass -n TENANT", o.Kind, o.Name, strings.Join(tenants, ", "))
	}
	return printObjects(o.F, items, o.Name != "")
}

// printObjects writes objects in the selected output format: one object
// when single, else a List that apply accepts again.
func printObjects(f *Factory, items []*spec.Object, single bool) error {
	if f.structured() {
		if single && len(items) == 1 {
			return writeObject(f, items[0])
		}
		return writeList(f, "List", nil, items)
	}
	if len(items) == 0 {
		fmt.Fprintln(f.IO.ErrOut, "no objects found")
		return nil
	}
	return printTable(f.IO.Out, items, f.wide(), nil)
}

// column is one table column of a kind.
type column struct {
	title string
	wide  bool
	value func(o *spec.Object) string
}

// printTable prints objects grouped by kind, one table each. events, when
// set, adds a leading EVENT column (for --watch).
func printTable(w io.Writer, items []*spec.Object, wide bool, events map[spec.Ref]string) error {
	byKind := map[spec.Kind][]*spec.Object{}
	for _, it := range items {
		byKind[it.Kind] = append(byKind[it.Kind], it)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	first := true
	for _, k := range spec.Kinds {
		objs := byKind[k]
		if len(objs) == 0 {
			continue
		}
		if !first {
			fmt.Fprintln(tw)
		}
		first = false
		cols := columnsFor(k)
		var hdr []string
		if events != nil {
			hdr = append(hdr, "EVENT")
		}
		if k.Namespaced() {
			hdr = append(hdr, "TENANT")
		}
		hdr = append(hdr, "NAME")
		for _, c := range cols {
			if !c.wide || wide {
				hdr = append(hdr, c.title)
			}
		}
		if wide {
			hdr = append(hdr, "LABELS")
		}
		fmt.Fprintln(tw, strings.Join(hdr, "\t"))
		for _, o := range objs {
			var row []string
			if events != nil {
				row = append(row, events[o.Ref()])
			}
			if k.Namespaced() {
				row = append(row, o.Metadata.Namespace)
			}
			row = append(row, o.Metadata.Name)
			for _, c := range cols {
				if !c.wide || wide {
					row = append(row, orDash(c.value(o)))
				}
			}
			if wide {
				row = append(row, orDash(labelsOf(o.Metadata.Labels)))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rate(r *spec.RateLimit) string {
	if r.IsZero() {
		return ""
	}
	if r.Burst > 0 {
		return fmt.Sprintf("%s (burst %d)", r.Rate, r.Burst)
	}
	return r.Rate.String()
}

func columnsFor(k spec.Kind) []column {
	switch k {
	case spec.KindTenant:
		return []column{
			{title: "DISPLAY NAME", value: func(o *spec.Object) string { return o.Spec.(*spec.TenantSpec).DisplayName }},
			{title: "ISSUER", value: func(o *spec.Object) string {
				if id := o.Spec.(*spec.TenantSpec).Identity; id != nil {
					return id.Issuer
				}
				return ""
			}},
			{title: "RATE LIMIT", wide: true, value: func(o *spec.Object) string {
				if d := o.Spec.(*spec.TenantSpec).Defaults; d != nil {
					return rate(d.RateLimit)
				}
				return ""
			}},
		}
	case spec.KindTool:
		return []column{
			{title: "UPSTREAM", value: func(o *spec.Object) string {
				t := o.Spec.(*spec.ToolSpec)
				if t.Upstream != "" {
					return t.Upstream
				}
				var us []string
				for _, u := range t.Upstreams {
					us = append(us, fmt.Sprintf("%s=%d", u.URL, u.Weight))
				}
				return strings.Join(us, ",")
			}},
			{title: "AUTH", value: func(o *spec.Object) string {
				if a := o.Spec.(*spec.ToolSpec).Auth; a != nil {
					return a.Type
				}
				return ""
			}},
			{title: "OPERATIONS", value: func(o *spec.Object) string { return fmt.Sprint(len(o.Spec.(*spec.ToolSpec).Operations)) }},
			{title: "ROUTE", wide: true, value: func(o *spec.Object) string {
				if r := o.Spec.(*spec.ToolSpec).Route; r != nil {
					return r.Host + r.PathPrefix
				}
				return ""
			}},
			{title: "RATE LIMIT", wide: true, value: func(o *spec.Object) string { return rate(o.Spec.(*spec.ToolSpec).RateLimit) }},
		}
	case spec.KindToolSet:
		return []column{
			{title: "TOOLS", value: func(o *spec.Object) string { return strings.Join(o.Spec.(*spec.ToolSetSpec).Tools, ",") }},
			{title: "AUTH", value: func(o *spec.Object) string {
				if p := o.Spec.(*spec.ToolSetSpec).Policies; p != nil {
					return p.Auth
				}
				return ""
			}},
			{title: "RATE LIMIT", value: func(o *spec.Object) string {
				if p := o.Spec.(*spec.ToolSetSpec).Policies; p != nil {
					return rate(p.RateLimit)
				}
				return ""
			}},
		}
	case spec.KindPlan:
		return []column{
			{title: "RATE LIMIT", value: func(o *spec.Object) string { return rate(o.Spec.(*spec.PlanSpec).RateLimit) }},
			{title: "DAILY", value: func(o *spec.Object) string {
				if q := o.Spec.(*spec.PlanSpec).Quota; q != nil && q.Daily > 0 {
					return fmt.Sprint(q.Daily)
				}
				return ""
			}},
			{title: "MONTHLY", value: func(o *spec.Object) string {
				if q := o.Spec.(*spec.PlanSpec).Quota; q != nil && q.Monthly > 0 {
					return fmt.Sprint(q.Monthly)
				}
				return ""
			}},
		}
	case spec.KindConsumer:
		return []column{
			{title: "DISPLAY NAME", value: func(o *spec.Object) string { return o.Spec.(*spec.ConsumerSpec).DisplayName }},
			{title: "CONTACT", value: func(o *spec.Object) string { return o.Spec.(*spec.ConsumerSpec).Contact }},
			{title: "SUSPENDED", wide: true, value: func(o *spec.Object) string { return fmt.Sprint(o.Spec.(*spec.ConsumerSpec).Suspended) }},
		}
	case spec.KindSubscription:
		return []column{
			{title: "CONSUMER", value: func(o *spec.Object) string { return o.Spec.(*spec.SubscriptionSpec).Consumer }},
			{title: "PLAN", value: func(o *spec.Object) string { return o.Spec.(*spec.SubscriptionSpec).Plan }},
			{title: "TARGET", value: func(o *spec.Object) string {
				s := o.Spec.(*spec.SubscriptionSpec)
				if s.Tool != "" {
					return "tool/" + s.Tool
				}
				return "toolset/" + s.ToolSet
			}},
			{title: "STATE", value: func(o *spec.Object) string { return o.Spec.(*spec.SubscriptionSpec).State }},
			{title: "EXPIRES", wide: true, value: func(o *spec.Object) string { return o.Spec.(*spec.SubscriptionSpec).ExpiresAt }},
		}
	case spec.KindWebhook:
		return []column{
			{title: "URL", value: func(o *spec.Object) string { return o.Spec.(*spec.WebhookSpec).URL }},
			{title: "EVENTS", value: func(o *spec.Object) string { return strings.Join(o.Spec.(*spec.WebhookSpec).Events, ",") }},
		}
	case spec.KindGateway:
		return []column{
			{title: "XDP", value: func(o *spec.Object) string {
				if x := o.Spec.(*spec.GatewaySpec).XDP; x != nil && x.Enabled {
					return "on (" + strings.Join(x.Interfaces, ",") + ")"
				}
				return "off"
			}},
			{title: "TRUSTED PROXIES", value: func(o *spec.Object) string {
				return strings.Join(o.Spec.(*spec.GatewaySpec).TrustedProxies, ",")
			}},
		}
	}
	return nil
}

// completeNames offers live object names for shell completion; it stays
// silent when stoad is not reachable.
func completeNames(f *Factory, kind, ns, prefix string) []string {
	k, ok := spec.ParseKind(kind)
	if !ok {
		return nil
	}
	if !k.Namespaced() {
		ns = ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	list, err := f.Client().Objects(ctx, string(k), ns, "")
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var names []string
	for _, it := range list.Items {
		n := it.Metadata.Name
		if !seen[n] && strings.HasPrefix(n, prefix) {
			seen[n] = true
			if it.Metadata.Namespace != "" && ns == "" {
				n += "\ttenant " + it.Metadata.Namespace
			}
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
