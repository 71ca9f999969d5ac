package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// QuotasOptions are the inputs of `stoa quotas`.
type QuotasOptions struct {
	F             *Factory
	Namespace     string
	AllNamespaces bool
}

func newQuotasCmd(f *Factory) *cobra.Command {
	o := &QuotasOptions{F: f}
	cmd := &cobra.Command{
		Use:     "quotas [-n TENANT]",
		Aliases: []string{"quota", "usage"},
		Short:   "Show subscriptions' effective state and quota usage (day and month)",
		Long: `Quotas count calls per subscription: days reset at 00:00 UTC, months on the 1st.
Counters live in memory and are flushed to the store every 5s, so a crash
loses at most that much usage; see docs/quotas.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "subscriptions of every tenant")
	return cmd
}

// Run lists the subscriptions with their usage.
func (o *QuotasOptions) Run(ctx context.Context) error {
	ns := o.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	l, err := o.F.Client().Quotas(ctx, ns)
	if err != nil {
		return err
	}
	if done, err := printedList(o.F, "QuotaList", map[string]any{"now": l.Now}, l.Items); done {
		return err
	}
	if len(l.Items) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no subscriptions")
		return nil
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSUBSCRIPTION\tCONSUMER\tPLAN\tTARGET\tSTATE\tTODAY\tTHIS MONTH\tEXPIRES")
	for _, q := range l.Items {
		target := q.Tool
		if q.ToolSet != "" {
			target = "set " + q.ToolSet
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", q.Tenant, q.Name, q.Consumer, q.Plan, target, q.State,
			usage(q.DailyUsed, q.Daily), usage(q.MonthlyUsed, q.Monthly), when(q.ExpiresAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.F.IO.ErrOut, "days reset at 00:00 UTC (next %s), months on the 1st\n", l.Items[0].DailyReset.Local().Format(time.DateTime))
	return nil
}

func usage(used, limit int64) string {
	if limit == 0 {
		return fmt.Sprintf("%d (no cap)", used)
	}
	return fmt.Sprintf("%d/%d", used, limit)
}
