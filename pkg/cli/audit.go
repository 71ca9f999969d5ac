package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// AuditOptions are the inputs of `stoa audit`.
type AuditOptions struct {
	F                        *Factory
	Since, Actor, Action, NS string
	Limit                    int
}

func newAuditCmd(f *Factory) *cobra.Command {
	o := &AuditOptions{F: f}
	cmd := &cobra.Command{
		Use:   "audit [--since 1h] [--actor NAME] [--action A]",
		Short: "Show the tamper-evident audit trail (who changed what, when)",
		Long: `Every change is recorded append-only with its actor, time, action, target and
revision: applies, deletes, rollbacks, key creation/rotation/revocation,
subscription changes, XDP blocks, replays and webhook redeliveries. Each entry
carries the SHA-256 of the previous one; "stoa audit verify" checks the chain.

-o json and -o yaml print the entries as one AuditEntryList document;
-o ndjson streams them as JSON lines, one entry per line — the form to
export and to recompute the hash chain from (see docs/audit.md).`,
		Example: `  stoa audit --since 24h
  stoa audit --actor alice --action 'key.*'
  stoa audit -o ndjson > audit.ndjson
  stoa audit verify`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	cmd.Flags().StringVar(&o.Since, "since", "", "only entries newer than this (1h, 7d, or an RFC 3339 time)")
	cmd.Flags().StringVar(&o.Actor, "actor", "", "only entries whose actor contains this (case-insensitive)")
	cmd.Flags().StringVar(&o.Action, "action", "", "only this action (apply, delete, rollback, key.create, …; 'key.*' for a prefix)")
	cmd.Flags().StringVarP(&o.NS, "namespace", "n", "", "only entries of this tenant")
	cmd.Flags().IntVar(&o.Limit, "limit", 0, "only the newest N matching entries")
	cmd.AddCommand(newAuditVerifyCmd(f))
	return cmd
}

// parseSince reads "1h", "7d" (ago) or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := spec.NewDuration(s)
	if err != nil || d.D() < 0 {
		return time.Time{}, fmt.Errorf("--since %q: want a duration such as 1h or 7d, or an RFC 3339 time", s)
	}
	return now.Add(-d.D()), nil
}

// Run lists the entries.
func (o *AuditOptions) Run(ctx context.Context) error {
	since, err := parseSince(o.Since, o.F.Now())
	if err != nil {
		return err
	}
	opts := client.AuditOptions{Since: since, Actor: o.Actor, Action: o.Action, Namespace: o.NS, Limit: o.Limit}
	out := o.F.IO.Out
	switch o.F.Output {
	case outNDJSON:
		// Streamed as stoad sends it: an export of a long trail needs no
		// memory for the whole of it.
		return o.F.Client().Audit(ctx, opts, func(e api.AuditEntry) error { return writeJSONLine(out, e) })
	case outJSON, outYAML:
		var list []api.AuditEntry
		if err := o.F.Client().Audit(ctx, opts, func(e api.AuditEntry) error { list = append(list, e); return nil }); err != nil {
			return err
		}
		return writeList(o.F, "AuditEntryList", nil, list)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	n := 0
	err = o.F.Client().Audit(ctx, opts, func(e api.AuditEntry) error {
		if n == 0 {
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tTENANT\tREVISION")
		}
		n++
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\n", e.Seq, e.Time.Local().Format(time.DateTime), e.Actor, e.Action,
			e.Target, orDash(e.Tenant), e.Revision)
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no audit entries match")
		return nil
	}
	return tw.Flush()
}

// AuditVerifyOptions are the inputs of `stoa audit verify`.
type AuditVerifyOptions struct{ F *Factory }

func newAuditVerifyCmd(f *Factory) *cobra.Command {
	o := &AuditVerifyOptions{F: f}
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the audit chain; report the first broken link (exit 1)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
}

// Run checks the chain; a broken one is exit 1.
func (o *AuditVerifyOptions) Run(ctx context.Context) error {
	res, err := o.F.Client().AuditVerify(ctx)
	if err != nil {
		return err
	}
	if done, err := printed(o.F, res); done {
		if err == nil && !res.OK {
			return silent(ExitFailure)
		}
		return err
	}
	if !res.OK {
		fmt.Fprintf(o.F.IO.ErrOut, "audit chain BROKEN at entry %d: %s\n", res.BrokenAt, res.Problem)
		fmt.Fprintf(o.F.IO.ErrOut, "entries before %d verify; compare with an exported copy (stoa audit -o ndjson) to see what changed\n", res.BrokenAt)
		return silent(ExitFailure)
	}
	head := res.Head
	if head == "" {
		head = strings.Repeat("0", 64)
	}
	fmt.Fprintf(o.F.IO.Out, "audit chain intact: %d entries, head sha256:%s\n", res.Entries, head)
	return nil
}
