package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// DeleteOptions are the inputs of `stoa delete`.
type DeleteOptions struct {
	F              *Factory
	Files          fileFlags
	Namespace      string
	DryRun         bool
	IgnoreNotFound bool
	Refs           []spec.Ref
}

func newDeleteCmd(f *Factory) *cobra.Command {
	o := &DeleteOptions{F: f}
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME... | -f PATH...)",
		Short: "Delete objects (one new revision)",
		Long: `Delete removes objects by kind and name, or every object defined in the given
files. All deletions become one revision. stoad refuses deletions that would
leave other objects referring to something missing.`,
		Example: "  stoa delete tool billing-api -n acme\n  stoa delete -f examples/quickstart/",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				var ks []string
				for _, k := range spec.Kinds {
					ks = append(ks, strings.ToLower(string(k)))
				}
				return ks, cobra.ShellCompDirectiveNoFileComp
			}
			return completeNames(f, args[0], o.Namespace, toComplete), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(args); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.Files.bind(cmd)
	bindNamespace(cmd, &o.Namespace)
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "show what would be deleted")
	cmd.Flags().BoolVar(&o.IgnoreNotFound, "ignore-not-found", false, "treat missing objects as already deleted")
	return cmd
}

func (o *DeleteOptions) complete(args []string) error {
	switch {
	case len(o.Files.Paths) > 0 && len(args) > 0:
		return errors.New("pass either KIND NAME... or -f PATH, not both")
	case len(o.Files.Paths) > 0:
		objs, err := loadSpecs(o.F, o.Files.Paths, false)
		if err != nil {
			return err
		}
		for _, obj := range objs {
			o.Refs = append(o.Refs, obj.Ref())
		}
		return nil
	case len(args) < 2:
		return errors.New("usage: stoa delete KIND NAME... [-n TENANT] or stoa delete -f PATH")
	}
	k, ok := spec.ParseKind(args[0])
	if !ok {
		return unknownKind(args[0], false)
	}
	if k.Namespaced() && o.Namespace == "" {
		return fmt.Errorf("%s is a tenant-scoped kind: pass -n TENANT", k)
	}
	for _, name := range args[1:] {
		ref := spec.Ref{Kind: k, Name: name}
		if k.Namespaced() {
			ref.Namespace = o.Namespace
		}
		o.Refs = append(o.Refs, ref)
	}
	return nil
}

// Run deletes the objects.
func (o *DeleteOptions) Run(ctx context.Context) error {
	resp, err := o.F.Client().Delete(ctx, &api.DeleteRequest{Refs: o.Refs, DryRun: o.DryRun, IgnoreNotFound: o.IgnoreNotFound || len(o.Files.Paths) > 0})
	if err != nil {
		return serverInvalid(o.F, nil, err)
	}
	return printChangeResult(o.F, resp, o.DryRun)
}

// printChangeResult reports delete and rollback results.
func printChangeResult(f *Factory, resp *api.ApplyResponse, dryRun bool) error {
	if f.structured() {
		resp.Changes = changesRefsOnly(resp.Changes, false)
		return writeObject(f, resp)
	}
	for _, c := range resp.Changes {
		verb := c.Op.Verb()
		if dryRun {
			verb = string(c.Op) + " (dry run)"
		}
		fmt.Fprintf(f.IO.Out, "%s %s\n", c.Ref, verb)
	}
	switch {
	case dryRun:
		fmt.Fprintf(f.IO.ErrOut, "dry run: %s; nothing changed (revision %d)\n", resp.Summary, resp.Revision)
	case !resp.Created:
		fmt.Fprintf(f.IO.ErrOut, "no changes; revision %d unchanged\n", resp.Revision)
	default:
		fmt.Fprintf(f.IO.ErrOut, "revision %d: %s\n", resp.Revision, summaryDone(resp.Summary))
	}
	return nil
}

func summaryDone(s plan.Summary) string {
	return fmt.Sprintf("%d created, %d updated, %d deleted", s.Create, s.Update, s.Delete)
}

// RollbackOptions are the inputs of `stoa rollback`.
type RollbackOptions struct {
	F        *Factory
	Revision int64
	DryRun   bool
}

func newRollbackCmd(f *Factory) *cobra.Command {
	o := &RollbackOptions{F: f}
	cmd := &cobra.Command{
		Use:   "rollback [REVISION]",
		Short: "Return to an earlier revision (as a new revision)",
		Long: `Rollback makes the objects of an earlier revision live again. The rollback is
itself a new revision, so it can be rolled back too. Without REVISION it
returns to the revision before the current one.`,
		Example:           "  stoa rollback\n  stoa rollback 3 --dry-run",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeRevisions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				n, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || n <= 0 {
					return fmt.Errorf("revision %q: want a positive number (see stoa history)", args[0])
				}
				o.Revision = n
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "show what would change")
	return cmd
}

// Run rolls back.
func (o *RollbackOptions) Run(ctx context.Context) error {
	resp, err := o.F.Client().Rollback(ctx, &api.RollbackRequest{Revision: o.Revision, DryRun: o.DryRun})
	if err != nil {
		return serverInvalid(o.F, nil, err)
	}
	return printChangeResult(o.F, resp, o.DryRun)
}

// HistoryOptions are the inputs of `stoa history`.
type HistoryOptions struct {
	F        *Factory
	Limit    int
	Revision int64
}

func newHistoryCmd(f *Factory) *cobra.Command {
	o := &HistoryOptions{F: f}
	cmd := &cobra.Command{
		Use:               "history [REVISION]",
		Short:             "List revisions, or show what one revision changed",
		Example:           "  stoa history\n  stoa history 4",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeRevisions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				n, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || n <= 0 {
					return fmt.Errorf("revision %q: want a positive number", args[0])
				}
				o.Revision = n
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().IntVar(&o.Limit, "limit", 50, "show at most this many revisions (0: all)")
	return cmd
}

// Run prints the history.
func (o *HistoryOptions) Run(ctx context.Context) error {
	c := o.F.Client()
	if o.Revision > 0 {
		rev, err := c.Revision(ctx, o.Revision)
		if err != nil {
			return err
		}
		if done, err := printed(o.F, rev); done {
			return err
		}
		fmt.Fprintf(o.F.IO.Out, "revision %d  %s  %s by %s", rev.ID, rev.Time.Local().Format(time.DateTime), rev.Action, rev.Actor)
		if rev.Message != "" {
			fmt.Fprintf(o.F.IO.Out, "  %q", rev.Message)
		}
		fmt.Fprintf(o.F.IO.Out, "\n%s\n\n", summaryDone(rev.Summary))
		return plan.RenderText(o.F.IO.Out, rev.Changes, plan.RenderOptions{Color: o.F.IO.ColorOut()})
	}
	list, err := c.Revisions(ctx, o.Limit)
	if err != nil {
		return err
	}
	if done, err := printedList(o.F, "RevisionList", map[string]any{"current": list.Current}, list.Items); done {
		return err
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no revisions yet; apply specs with: stoa apply -f DIR")
		return nil
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tTIME\tACTION\tACTOR\tCHANGES\tMESSAGE")
	for _, r := range list.Items {
		id := strconv.FormatInt(r.ID, 10)
		if r.ID == list.Current {
			id += "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t+%d ~%d -%d\t%s\n", id, r.Time.Local().Format(time.DateTime), r.Action, r.Actor,
			r.Summary.Create, r.Summary.Update, r.Summary.Delete, orDash(r.Message))
	}
	return tw.Flush()
}
