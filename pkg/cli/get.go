package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/yamlenc"
)

// GetOptions are the inputs of `stoa get`.
type GetOptions struct {
	F             *Factory
	Kind          spec.Kind
	Name          string
	Namespace     string
	AllNamespaces bool
}

func newGetCmd(f *Factory) *cobra.Command {
	o := &GetOptions{F: f}
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "List live objects, or show one (defaults applied)",
		Long: `Get lists live objects of a kind (tenants, tools, toolsets, plans, consumers,
subscriptions, webhooks, gateways). Without -n it lists every tenant's
objects. -o yaml and -o json show objects with all defaults filled in.`,
		Example: "  stoa get tools\n  stoa get tool billing-api -n acme -o yaml\n  stoa get subscriptions -A -o json",
		Args:    cobra.RangeArgs(1, 2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				var ks []string
				for _, k := range spec.Kinds {
					ks = append(ks, strings.ToLower(string(k))+"s")
				}
				return ks, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(cmd.Context(), f, args[0], o.Namespace), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			k, ok := spec.ParseKind(args[0])
			if !ok {
				return unknownKind(args[0])
			}
			o.Kind = k
			if len(args) > 1 {
				o.Name = args[1]
			}
			return o.Run(cmd.Context())
		},
	}
	bindNamespace(cmd, &o.Namespace)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list objects of every tenant")
	return cmd
}

func bindNamespace(cmd *cobra.Command, ns *string) {
	cmd.Flags().StringVarP(ns, "namespace", "n", os.Getenv("STOA_NAMESPACE"), "tenant (env STOA_NAMESPACE)")
	_ = cmd.RegisterFlagCompletionFunc("namespace", func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return CompleteTenants(cmd, args, toComplete)
	})
}

func unknownKind(s string) error {
	var ks []string
	for _, k := range spec.Kinds {
		ks = append(ks, strings.ToLower(string(k))+"s")
	}
	return fmt.Errorf("unknown kind %q (kinds: %s)", s, strings.Join(ks, ", "))
}

// Run lists or shows objects.
func (o *GetOptions) Run(ctx context.Context) error {
	ns := o.Namespace
	if o.AllNamespaces || !o.Kind.Namespaced() {
		ns = ""
	}
	list, err := o.F.Client().Objects(ctx, string(o.Kind), ns, o.Name)
	if err != nil {
		return err
	}
	if o.Name != "" && len(list.Items) > 1 {
		var tenants []string
		for _, it := range list.Items {
			tenants = append(tenants, it.Metadata.Namespace)
		}
		return fmt.Errorf("%s %q exists in several tenants (%s): pass -n TENANT", o.Kind, o.Name, strings.Join(tenants, ", "))
	}
	return printObjects(o.F, list.Items, o.Name != "")
}

// printObjects writes objects in the selected output format.
func printObjects(f *Factory, items []*spec.Object, single bool) error {
	w := f.IO.Out
	switch f.Output {
	case "json":
		if single && len(items) == 1 {
			return writeJSON(w, items[0])
		}
		return writeJSON(w, map[string]any{"kind": "List", "items": items})
	case "yaml":
		for i, it := range items {
			if i > 0 {
				fmt.Fprintln(w, "---")
			}
			b, err := json.Marshal(it)
			if err != nil {
				return err
			}
			y, err := yamlenc.FromJSON(b)
			if err != nil {
				return err
			}
			if _, err := w.Write(y); err != nil {
				return err
			}
		}
		return nil
	}
	if len(items) == 0 {
		fmt.Fprintln(f.IO.ErrOut, "no objects found")
		return nil
	}
	return printTable(w, items, f.Output == "wide")
}

// column is one table column of a kind.
type column struct {
	title string
	wide  bool
	value func(o *spec.Object) string
}

func printTable(w io.Writer, items []*spec.Object, wide bool) error {
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
		if k.Namespaced() {
			hdr = append(hdr, "TENANT")
		}
		hdr = append(hdr, "NAME")
		for _, c := range cols {
			if !c.wide || wide {
				hdr = append(hdr, c.title)
			}
		}
		fmt.Fprintln(tw, strings.Join(hdr, "\t"))
		for _, o := range objs {
			var row []string
			if k.Namespaced() {
				row = append(row, o.Metadata.Namespace)
			}
			row = append(row, o.Metadata.Name)
			for _, c := range cols {
				if !c.wide || wide {
					row = append(row, orDash(c.value(o)))
				}
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
	return string(r.Rate)
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
func completeNames(ctx context.Context, f *Factory, kind, ns string) []string {
	k, ok := spec.ParseKind(kind)
	if !ok {
		return nil
	}
	list, err := f.Client().Objects(ctx, string(k), ns, "")
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var names []string
	for _, it := range list.Items {
		if !seen[it.Metadata.Name] {
			seen[it.Metadata.Name] = true
			names = append(names, it.Metadata.Name)
		}
	}
	sort.Strings(names)
	return names
}
