package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
)

func newXDPCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "xdp",
		Short: "Inspect the kernel (XDP) limiter and block or unblock sources at runtime",
		Long: `stoad's XDP program drops traffic to the gateway's ports from denied, blocked
or over-rate sources before the proxy sees it. Its policy comes from the
Gateway spec (spec.xdp); blocks made here last until they expire or are lifted,
and do not survive a restart of stoad (use spec.xdp.deny for that).`,
	}
	cmd.AddCommand(newXDPStatusCmd(f), newXDPBlocksCmd(f), newXDPBlockCmd(f), newXDPUnblockCmd(f))
	return cmd
}

// XDPStatusOptions are the inputs of `stoa xdp status`.
type XDPStatusOptions struct{ F *Factory }

func newXDPStatusCmd(f *Factory) *cobra.Command {
	o := &XDPStatusOptions{F: f}
	return &cobra.Command{
		Use:   "status",
		Short: "Show the XDP mode, interfaces, policy, counters and top sources",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
}

// Run shows the XDP limiter's status.
func (o *XDPStatusOptions) Run(ctx context.Context) error {
	s, err := o.F.Client().XDPStatus(ctx)
	if err != nil {
		return err
	}
	if done, err := printed(o.F, s); done {
		return err
	}
	return writeXDPStatus(o.F.IO.Out, s)
}

func writeXDPStatus(out io.Writer, s *api.XDPStatus) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	mode := s.Mode
	switch {
	case !s.Enabled:
		mode = "off"
	case !s.Attached && s.Fallback:
		mode = "off (userspace fallback at accept time)"
	}
	fmt.Fprintf(w, "mode:\t%s\n", mode)
	if s.Reason != "" {
		fmt.Fprintf(w, "reason:\t%s\n", s.Reason)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "error:\t%s (the previous config stays in force)\n", s.Error)
	}
	if s.Enabled {
		var ifs []string
		for _, i := range s.Interfaces {
			if i.Mode != "" {
				ifs = append(ifs, i.Name+" ("+i.Mode+")")
			} else {
				ifs = append(ifs, i.Name)
			}
		}
		fmt.Fprintf(w, "interfaces:\t%s\n", strings.Join(ifs, ", "))
		ports := make([]string, len(s.Ports))
		for i, p := range s.Ports {
			ports[i] = fmt.Sprint(p)
		}
		fmt.Fprintf(w, "ports:\t%s\n", strings.Join(ports, ", "))
		limit := "none"
		if ps := s.PerSource; ps != nil {
			limit = fmt.Sprintf("%s, burst %d, counting %s", ps.Rate, ps.Burst, ps.Count)
		}
		fmt.Fprintf(w, "per source:\t%s\n", limit)
		if len(s.Deny) > 0 {
			fmt.Fprintf(w, "deny:\t%s\n", strings.Join(s.Deny, ", "))
		}
		esc := "off"
		if e := s.Escalation; e != nil {
			esc = fmt.Sprintf("after %d rejections within %s, block for %s", e.After, seconds(e.WithinSeconds), seconds(e.BlockSeconds))
			if e.IPv4PrefixLength > 0 && e.IPv6PrefixLength > 0 {
				esc += fmt.Sprintf(", per IPv4 /%d and IPv6 /%d", e.IPv4PrefixLength, e.IPv6PrefixLength)
			}
		}
		fmt.Fprintf(w, "escalation:\t%s\n", esc)
	}
	k := s.Counters
	fmt.Fprintf(w, "packets:\tpassed %d, dropped %d (rate %d, deny %d, block %d)\n",
		k.Passed, k.DroppedRate+k.DroppedDeny+k.DroppedBlock, k.DroppedRate, k.DroppedDeny, k.DroppedBlock)
	if fc := s.FallbackCounters; s.Fallback || fc != (api.XDPCounters{}) {
		fmt.Fprintf(w, "connections:\taccepted %d, rejected %d (rate %d, deny %d, block %d) by the fallback\n",
			fc.Passed, fc.DroppedRate+fc.DroppedDeny+fc.DroppedBlock, fc.DroppedRate, fc.DroppedDeny, fc.DroppedBlock)
	}
	fmt.Fprintf(w, "sources:\t%d tracked\n", s.TrackedSources)
	fmt.Fprintf(w, "blocks:\t%d in force (list them with: stoa xdp blocks)\n", s.Blocks)
	for i, src := range s.TopSources {
		label := ""
		if i == 0 {
			label = "top sources:"
		}
		fmt.Fprintf(w, "%s\t%-40s passed %d, dropped %d\n", label, src.Addr, src.Passed, src.Dropped)
	}
	return w.Flush()
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// XDPBlocksOptions are the inputs of `stoa xdp blocks`.
type XDPBlocksOptions struct{ F *Factory }

func newXDPBlocksCmd(f *Factory) *cobra.Command {
	o := &XDPBlocksOptions{F: f}
	return &cobra.Command{
		Use:   "blocks",
		Short: "List the sources blocked in the kernel (source, reason, expiry)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
}

// Run lists the blocks in force.
func (o *XDPBlocksOptions) Run(ctx context.Context) error {
	l, err := o.F.Client().XDPBlocks(ctx)
	if err != nil {
		return err
	}
	if done, err := printedList(o.F, "XDPBlockList", nil, l.Items); done {
		return err
	}
	if len(l.Items) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no blocks in force; block a source with: stoa xdp block CIDR --for 10m")
		return nil
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tREASON\tEXPIRES\tIN")
	for _, b := range l.Items {
		left := seconds(b.ExpiresInSeconds).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Source, orDash(b.Reason), when(b.Until), left)
	}
	return tw.Flush()
}

// XDPBlockOptions are the inputs of `stoa xdp block`.
type XDPBlockOptions struct {
	F      *Factory
	CIDR   string
	For    string
	Reason string
}

func newXDPBlockCmd(f *Factory) *cobra.Command {
	o := &XDPBlockOptions{F: f}
	cmd := &cobra.Command{
		Use:   "block CIDR --for DURATION [--reason TEXT]",
		Short: "Drop a source's traffic to the gateway in the kernel for a while",
		Example: "  stoa xdp block 198.51.100.7 --for 10m --reason 'credential stuffing'\n" +
			"  stoa xdp block 2001:db8:bad::/48 --for 2h",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.CIDR = args[0]
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.For, "for", "", "how long, e.g. 10m, 2h or 7d (required)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why; shown in stoa xdp blocks and recorded in the event")
	return cmd
}

// Run blocks the source.
func (o *XDPBlockOptions) Run(ctx context.Context) error {
	if o.For == "" {
		return errors.New("--for is required, e.g. --for 10m")
	}
	b, err := o.F.Client().XDPBlock(ctx, &api.XDPBlockRequest{CIDR: o.CIDR, For: o.For, Reason: o.Reason})
	if err != nil {
		return err
	}
	if done, err := printed(o.F, b); done {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "blocked %s until %s\n", b.Source, when(b.Until))
	return nil
}

// XDPUnblockOptions are the inputs of `stoa xdp unblock`.
type XDPUnblockOptions struct {
	F    *Factory
	CIDR string
}

func newXDPUnblockCmd(f *Factory) *cobra.Command {
	o := &XDPUnblockOptions{F: f}
	return &cobra.Command{
		Use:     "unblock CIDR",
		Short:   "Lift a block (as it was given to block)",
		Example: "  stoa xdp unblock 198.51.100.7",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.CIDR = args[0]
			return o.Run(cmd.Context())
		},
	}
}

// Run lifts the block.
func (o *XDPUnblockOptions) Run(ctx context.Context) error {
	r, err := o.F.Client().XDPUnblock(ctx, o.CIDR)
	if err != nil {
		return err
	}
	if done, err := printed(o.F, r); done {
		return err
	}
	if !r.Removed {
		fmt.Fprintf(o.F.IO.ErrOut, "%s was not blocked; list blocks with: stoa xdp blocks\n", r.Source)
		return nil
	}
	fmt.Fprintf(o.F.IO.Out, "unblocked %s\n", r.Source)
	return nil
}
