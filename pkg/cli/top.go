package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tui/common"
)

// TopOptions are the inputs of `stoa top`.
type TopOptions struct {
	F      *Factory
	Follow bool
}

func newTopCmd(f *Factory) *cobra.Command {
	o := &TopOptions{F: f}
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Print live traffic per tenant and tool (one sample; -o json for scripts)",
		Long: `Top prints one sample of stoad's live statistics: per tenant and tool the
requests per second, p50/p99 latency over the last second, responses per
status class, 429s and upstream health; MCP calls per operation; XDP
counters when XDP reports them. stoad measures over about a second, so top
takes that long to answer.

-o json prints the sample as JSON (stable field names, see pkg/api/stats.go);
with --follow, one JSON sample per line (NDJSON) about every second (-o yaml:
one YAML document per sample, separated by ---). For an interactive view use:
stoa dashboard`,
		Example: "  stoa top\n  stoa top -o json | jq '.tenants[].tools[] | {name, rps, p99Ms}'\n  stoa top --follow -o json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing a sample every second")
	return cmd
}

// Run prints one sample, or follows the stream.
func (o *TopOptions) Run(ctx context.Context) error {
	c := o.F.Client()
	if !o.Follow {
		s, err := c.Stats(ctx)
		if err != nil {
			return err
		}
		if done, err := printed(o.F, s); done {
			return err
		}
		return writeTop(o.F.IO.Out, s)
	}
	stream := &streamWriter{f: o.F}
	err := c.FollowStats(ctx, func(s *api.StatsSample) error {
		if s.IntervalSeconds == 0 {
			return nil // no rates yet
		}
		if o.F.structured() {
			return stream.write(s)
		}
		fmt.Fprintln(o.F.IO.Out)
		return writeTop(o.F.IO.Out, s)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// writeTop renders a sample as tables.
func writeTop(w io.Writer, s *api.StatsSample) error {
	d := s.Daemon
	fmt.Fprintf(w, "stoad %s, up %s, revision %d: %s req/s, p50 %s, p99 %s\n",
		d.Version, common.Uptime(d.UptimeSeconds), s.Revision, common.Rate(s.Totals.RPS), common.Ms(s.Totals.P50Ms), common.Ms(s.Totals.P99Ms))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tTOOL\tREQ/S\tP50\tP99\t2XX/S\t4XX/S\t5XX/S\t429/S\tREQUESTS\tUPSTREAM")
	tools := 0
	for _, t := range s.Tenants {
		for _, tool := range t.Tools {
			tools++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", t.Name, tool.Name,
				common.Rate(tool.RPS), common.Ms(tool.P50Ms), common.Ms(tool.P99Ms), common.Rate(tool.CodeRates.S2xx),
				common.Rate(tool.CodeRates.S4xx), common.Rate(tool.CodeRates.S5xx), common.Rate(tool.LimitedRate),
				tool.Requests, tool.Health)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if tools == 0 {
		fmt.Fprintln(w, "(no tools; apply specs with: stoa apply -f DIR)")
	}
	if len(s.MCP) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tMCP TOOL\tCALLS/S\tP50\tP99\tERRORS\tCALLS")
		for _, m := range s.MCP {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", m.Tenant, m.Name, common.Rate(m.RPS), common.Ms(m.P50Ms), common.Ms(m.P99Ms), m.Errors, m.Requests)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if x := s.XDP; x != nil {
		var top []string
		for _, src := range x.TopSources {
			top = append(top, fmt.Sprintf("%s (%d dropped)", src.Addr, src.Dropped))
		}
		// The dashboard's wording: with XDP off, the userspace limiter's
		// accepted connections, never "passed" packets.
		fmt.Fprintf(w, "\n%s", common.XDPSummary(x))
		if len(top) > 0 {
			fmt.Fprintf(w, "; top: %s", strings.Join(top, ", "))
		}
		fmt.Fprintln(w)
	}
	return nil
}
