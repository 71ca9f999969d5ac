package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
)

func newSnapshotsCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshots",
		Aliases: []string{"snapshot", "snap"},
		Short:   "Inspect error snapshots of failed upstream calls; replay them",
		Long: `On every 5xx, upstream timeout or connection failure (proxy and MCP) stoad keeps
a redacted snapshot: request and response line, headers, the start of both
bodies, timing, upstream, tenant, consumer and revision. Credentials, cookies,
API keys and common secret patterns are replaced by [REDACTED] before anything
is stored. Snapshots are bounded per tenant by count, size and age (Gateway
spec snapshots:); see docs/snapshots.md.`,
	}
	cmd.AddCommand(newSnapshotsListCmd(f), newSnapshotsGetCmd(f), newSnapshotsReplayCmd(f))
	return cmd
}

// SnapshotsListOptions are the inputs of `stoa snapshots list`.
type SnapshotsListOptions struct {
	F                      *Factory
	Namespace, Tool, Since string
	All                    bool
	Limit                  int
}

func newSnapshotsListCmd(f *Factory) *cobra.Command {
	o := &SnapshotsListOptions{F: f}
	cmd := &cobra.Command{
		Use:     "list [-n TENANT] [--since 1h]",
		Aliases: []string{"ls"},
		Short:   "List snapshots, newest first",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().BoolVarP(&o.All, "all-namespaces", "A", false, "snapshots of every tenant")
	cmd.Flags().StringVar(&o.Since, "since", "", "only snapshots newer than this (1h, 7d, or an RFC 3339 time)")
	cmd.Flags().StringVar(&o.Tool, "tool", "", "only this tool's snapshots")
	cmd.Flags().IntVar(&o.Limit, "limit", 100, "at most this many")
	return cmd
}

// Run lists the snapshots.
func (o *SnapshotsListOptions) Run(ctx context.Context) error {
	since, err := parseSince(o.Since, o.F.Now())
	if err != nil {
		return err
	}
	ns := o.Namespace
	if o.All {
		ns = ""
	}
	list, err := o.F.Client().Snapshots(ctx, client.SnapshotsOptions{Namespace: ns, Tool: o.Tool, Since: since, Limit: o.Limit})
	if err != nil {
		return err
	}
	meta := map[string]any{}
	if list.Dropped > 0 {
		meta["dropped"] = list.Dropped
	}
	if done, err := printedList(o.F, "SnapshotList", meta, list.Items); done {
		return err
	}
	if list.Dropped > 0 {
		fmt.Fprintf(o.F.IO.ErrOut, "note: %d failures were not captured since stoad started (capture rate or queue bound)\n", list.Dropped)
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no snapshots")
		return nil
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	// Repeats of one failure are one snapshot: COUNT of them, the first
	// at TIME and the last at LAST SEEN.
	fmt.Fprintln(tw, "ID\tTIME\tCOUNT\tLAST SEEN\tTENANT\tTOOL\tCONSUMER\tREQUEST\tSTATUS\tREASON\tDURATION")
	for _, s := range list.Items {
		last := "-"
		if s.Count > 1 && !s.LastSeen.IsZero() {
			last = s.LastSeen.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s %s\t%d\t%s\t%s\n", s.ID, s.Time.Local().Format(time.DateTime), max(s.Count, 1), last,
			s.Tenant, s.Tool, orDash(s.Consumer), s.Method, truncateText(s.Target, 60), s.Status, s.Reason, s.Duration.Round(time.Millisecond))
	}
	return tw.Flush()
}

// SnapshotsGetOptions are the inputs of `stoa snapshots get`.
type SnapshotsGetOptions struct {
	F  *Factory
	ID string
}

func newSnapshotsGetCmd(f *Factory) *cobra.Command {
	o := &SnapshotsGetOptions{F: f}
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one snapshot with a ready-to-run curl (redactions marked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return o.Run(cmd.Context())
		},
	}
}

// Run shows the snapshot.
func (o *SnapshotsGetOptions) Run(ctx context.Context) error {
	s, err := o.F.Client().Snapshot(ctx, o.ID)
	if err != nil {
		return err
	}
	if done, err := printed(o.F, s); done {
		return err
	}
	printSnapshot(o.F.IO.Out, s)
	return nil
}

func printSnapshot(w io.Writer, s *api.Snapshot) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "snapshot:\t%s (%s)\n", s.ID, s.Source)
	fmt.Fprintf(tw, "time:\t%s, took %s\n", s.Time.Local().Format(time.RFC3339Nano), s.Duration.Round(time.Microsecond))
	if s.Count > 1 {
		fmt.Fprintf(tw, "repeats:\t%d times, the last at %s (same tenant, tool, route, method, status and reason; the first is shown)\n",
			s.Count, s.LastSeen.Local().Format(time.RFC3339Nano))
	}
	tool := s.Tenant + "/" + s.Tool
	if s.Operation != "" {
		tool += " (" + s.Operation + ")"
	}
	fmt.Fprintf(tw, "tool:\t%s, revision %d\n", tool, s.Revision)
	fmt.Fprintf(tw, "consumer:\t%s\n", orDash(s.Consumer))
	fmt.Fprintf(tw, "upstream:\t%s\n", orDash(s.Upstream))
	fail := s.Reason
	if s.Error != "" {
		fail += ": " + s.Error
	}
	fmt.Fprintf(tw, "failure:\t%s\n", fail)
	if s.Origin == "gateway" {
		fmt.Fprintf(tw, "answered by:\tthe gateway (no upstream was tried)\n")
	}
	if s.RequestID != "" {
		fmt.Fprintf(tw, "request id:\t%s\n", s.RequestID)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n> %s %s\n", s.Request.Method, s.Request.URL)
	printMessage(w, "> ", &s.Request)
	upstream := "gateway answer"
	if s.UpstreamStatus != 0 {
		upstream = "upstream answer"
	}
	fmt.Fprintf(w, "\n< %d (%s)\n", s.Response.Status, upstream)
	printMessage(w, "< ", &s.Response)
	if len(s.Redactions) > 0 {
		fmt.Fprintf(w, "\nredacted: %s\n", strings.Join(s.Redactions, "; "))
	}
	fmt.Fprintf(w, "\n%s", s.Curl)
}

func printMessage(w io.Writer, prefix string, m *api.SnapshotMessage) {
	for _, h := range m.Headers {
		fmt.Fprintf(w, "%s%s: %s\n", prefix, h.Name, h.Value)
	}
	switch {
	case m.Omitted != "":
		fmt.Fprintf(w, "%s[%d bytes: %s]\n", prefix, m.BodyBytes, m.Omitted)
	case m.Body != "":
		fmt.Fprintf(w, "%s\n%s\n", prefix, m.Body)
		if m.Truncated {
			fmt.Fprintf(w, "%s[body cut: %d of %d bytes kept]\n", prefix, len(m.Body), m.BodyBytes)
		}
	}
}

// SnapshotsReplayOptions are the inputs of `stoa snapshots replay`.
type SnapshotsReplayOptions struct {
	F  *Factory
	ID string
}

func newSnapshotsReplayCmd(f *Factory) *cobra.Command {
	o := &SnapshotsReplayOptions{F: f}
	return &cobra.Command{
		Use:   "replay ID",
		Short: "Re-send a snapshot's request through the tool's current route; show old and new status",
		Long: `The request is sent to the tool's current upstream with the tool's current
upstream credential — not through the public listener, and not with the
client's credential, which was never stored. Redacted headers are left out;
a body that was cut or redacted is sent as stored (a warning says so).
Exit code 1 when the replay gets no answer or a 5xx.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return o.Run(cmd.Context())
		},
	}
}

// Run replays the snapshot and compares the answers.
func (o *SnapshotsReplayOptions) Run(ctx context.Context) error {
	r, err := o.F.Client().ReplaySnapshot(ctx, o.ID)
	if err != nil {
		return err
	}
	// A replay that gets no answer or a 5xx still fails: exit 1, so
	// scripts can tell "fixed" from "still broken".
	why := ""
	switch {
	case r.Error != "":
		why = r.Error
	case r.Status >= 500:
		why = fmt.Sprintf("the upstream answered %d", r.Status)
	}
	if done, err := printed(o.F, r); done {
		if err == nil && why != "" {
			return silent(ExitFailure)
		}
		return err
	}
	out := o.F.IO.Out
	for _, w := range r.Warnings {
		fmt.Fprintln(o.F.IO.ErrOut, "warning:", w)
	}
	now := fmt.Sprintf("%d in %s", r.Status, r.Duration.Round(time.Millisecond))
	if r.Error != "" {
		now = "failed: " + r.Error
	}
	fmt.Fprintf(out, "%s  %s\n  before: %d (%s) in %s\n  now:    %s\n", r.Snapshot, r.URL, r.OldStatus, r.OldReason,
		r.OldDuration.Round(time.Millisecond), now)
	if r.Body != "" {
		fmt.Fprintf(out, "  body:   %s\n", truncateText(r.Body, 200))
	}
	if why != "" {
		return fmt.Errorf("replay of %s failed: %s", r.Snapshot, why)
	}
	return nil
}
