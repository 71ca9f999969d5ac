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
	Cascade        bool
	Yes            bool
	Force          bool
	Refs           []spec.Ref
	// command is the command line as typed (kind, names, namespace or
	// files), for the hints that suggest --dry-run or --yes.
	command string
}

func newDeleteCmd(f *Factory) *cobra.Command {
	o := &DeleteOptions{F: f}
	cmd := &cobra.Command{
		Use:   "delete (KIND NAME... | -f PATH...)",
		Short: "Delete objects (one new revision)",
		Long: `Delete removes objects by kind and name, or every object defined in the given
files. All deletions become one revision.

stoad refuses a deletion that would leave other objects referring to
something missing, and names each of them with the field that refers
(a ToolSet's spec.tools[1], a Subscription's spec.plan, every object of a
Tenant by its metadata.namespace). Delete or change those first, or pass
--cascade to delete them too, in dependency order: stoa shows what it
will delete and, when that is more than you named, asks for confirmation
on a terminal (--yes skips the question; without a terminal --yes is
required). --dry-run shows the diff and changes nothing.`,
		Example: "  stoa delete tool billing-api -n acme\n  stoa delete -f examples/quickstart/\n" +
			"  stoa delete tool inventory-api -n acme --cascade --dry-run\n  stoa delete tenant globex --cascade --yes",
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
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "show what would be deleted (a diff) without deleting")
	cmd.Flags().BoolVar(&o.IgnoreNotFound, "ignore-not-found", false, "treat missing objects as already deleted")
	cmd.Flags().BoolVar(&o.Cascade, "cascade", false, "also delete every object that refers to these (ToolSets, Subscriptions, a Tenant's objects)")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "with --cascade: do not ask before deleting more than the objects named")
	cmd.Flags().BoolVar(&o.Force, "force", false, "delete even though stoad runs in GitOps mode (--specs); the next change of its directory may restore it")
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
		o.command = "stoa delete -f " + strings.Join(o.Files.Paths, " -f ")
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
	o.command = "stoa delete " + strings.Join(args, " ")
	if k.Namespaced() {
		o.command += " -n " + o.Namespace
	}
	return nil
}

// Run deletes the objects. A plain deletion is one call; --dry-run and
// --cascade first ask stoad what would go (the diff), and a cascade that
// reaches beyond the named objects is confirmed, then committed only if
// the live revision is still the one previewed.
func (o *DeleteOptions) Run(ctx context.Context) error {
	c := o.F.Client()
	req := &api.DeleteRequest{Refs: o.Refs, IgnoreNotFound: o.IgnoreNotFound || len(o.Files.Paths) > 0, Cascade: o.Cascade, Force: o.Force}
	if !o.DryRun && !o.Cascade {
		resp, err := c.Delete(ctx, req)
		if err != nil {
			return serverInvalid(o.F, nil, err)
		}
		return printChangeResult(o.F, resp)
	}
	req.DryRun, req.WithObjects = true, true
	preview, err := c.Delete(ctx, req)
	if err != nil {
		return serverInvalid(o.F, nil, err)
	}
	if o.DryRun {
		return printPreview(o.F, preview, fmt.Sprintf("would delete %d %s", preview.Summary.Delete, plural(preview.Summary.Delete, "object", "objects")))
	}
	named := make(map[spec.Ref]bool, len(o.Refs))
	for _, r := range o.Refs {
		named[r] = true
	}
	extra := 0
	for _, ch := range preview.Changes {
		if !named[ch.Ref] {
			extra++
		}
	}
	if extra > 0 {
		err := confirm(o.F, o.Yes, confirmation{
			changes:  preview.Changes,
			question: fmt.Sprintf("Delete %d objects (%d of them because they refer to what you named)?", len(preview.Changes), extra),
			preview:  o.command + " --cascade --dry-run",
			force:    o.command + " --cascade --yes",
		})
		if err != nil {
			return err
		}
	}
	req.DryRun, req.WithObjects, req.IfRevision = false, false, preview.Revision
	resp, err := c.Delete(ctx, req)
	if err != nil {
		return serverInvalid(o.F, nil, err)
	}
	return printChangeResult(o.F, resp)
}

// printPreview prints a dry run: the unified diff (as stoa diff renders
// it) on stdout, the summary on stderr; -o json prints the response.
func printPreview(f *Factory, resp *api.ApplyResponse, what string) error {
	if f.structured() {
		resp.Changes = changesRefsOnly(resp.Changes, false)
		return writeObject(f, resp)
	}
	if err := plan.RenderText(f.IO.Out, resp.Changes, plan.RenderOptions{Color: f.IO.ColorOut()}); err != nil {
		return err
	}
	fmt.Fprintf(f.IO.ErrOut, "dry run: %s; nothing changed (revision %d)\n", what, resp.Revision)
	return nil
}

// printChangeResult reports what a delete did.
func printChangeResult(f *Factory, resp *api.ApplyResponse) error {
	if f.structured() {
		resp.Changes = changesRefsOnly(resp.Changes, false)
		return writeObject(f, resp)
	}
	for _, c := range resp.Changes {
		fmt.Fprintf(f.IO.Out, "%s %s\n", c.Ref, c.Op.Verb())
	}
	switch {
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
	// ToEmpty is REVISION 0: the empty state before the first apply.
	ToEmpty bool
	DryRun  bool
	Yes     bool
	Force   bool
}

func newRollbackCmd(f *Factory) *cobra.Command {
	o := &RollbackOptions{F: f}
	cmd := &cobra.Command{
		Use:   "rollback [REVISION]",
		Short: "Return to an earlier revision (as a new revision)",
		Long: `Rollback makes the objects of an earlier revision live again. The rollback is
itself a new revision, so it can be rolled back too. Without REVISION it
returns to the revision before the current one.

It first shows the diff it will make (as stoa diff does) and asks for
confirmation on a terminal; --yes skips the question, and without a
terminal --yes is required. --dry-run prints the diff and changes nothing.

Revision 0 is the empty state before the first apply: rolling back to it
deletes every object, so it is never reached by default (a plain
"stoa rollback" on revision 1 refuses); name it: stoa rollback 0.`,
		Example:           "  stoa rollback --dry-run\n  stoa rollback\n  stoa rollback 3 --yes\n  stoa rollback 0 --dry-run",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeRevisions(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				n, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || n < 0 {
					return fmt.Errorf("revision %q: want a revision number (see stoa history; 0 is the empty state)", args[0])
				}
				o.Revision, o.ToEmpty = n, n == 0
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "print the diff the rollback would make, change nothing")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation (required without a terminal)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "roll back even though stoad runs in GitOps mode (--specs); the next change of its directory overwrites it")
	return cmd
}

// Run previews the rollback, confirms it and commits it, provided the
// live revision is still the one the diff was made against.
func (o *RollbackOptions) Run(ctx context.Context) error {
	c := o.F.Client()
	req := &api.RollbackRequest{Revision: o.Revision, ToEmpty: o.ToEmpty, Force: o.Force, DryRun: true, WithObjects: true}
	preview, err := c.Rollback(ctx, req)
	if err != nil {
		return serverInvalid(o.F, nil, err)
	}
	target := o.Revision
	if target == 0 && !o.ToEmpty {
		target = preview.Revision - 1
	}
	s := preview.Summary
	if s.Empty() {
		if o.F.Output == "json" {
			return writeJSON(o.F.IO.Out, preview)
		}
		fmt.Fprintf(o.F.IO.ErrOut, "nothing to roll back: revision %d already has the objects of revision %d\n", preview.Revision, target)
		return nil
	}
	// Everything goes when nothing is created, updated or kept: revision
	// 0, or a revision whose objects were all deleted.
	var warning string
	if s.Create == 0 && s.Update == 0 && s.Unchanged == 0 {
		warning = fmt.Sprintf("WARNING: revision %d is empty: this deletes all %d live objects and leaves nothing served.", target, s.Delete)
	}
	if o.DryRun {
		err := printPreview(o.F, preview, fmt.Sprintf("rolling back from revision %d to %d would make %s", preview.Revision, target, s))
		if warning != "" && o.F.Output != "json" {
			fmt.Fprintln(o.F.IO.ErrOut, warning)
		}
		return err
	}
	// The suggested commands name the target, so that what runs later is
	// what was reviewed.
	cmdline := fmt.Sprintf("stoa rollback %d", target)
	conf := confirmation{
		changes:  preview.Changes,
		warning:  warning,
		question: fmt.Sprintf("Roll back from revision %d to revision %d (%s)?", preview.Revision, target, s),
		preview:  cmdline + " --dry-run",
		force:    cmdline + " --yes",
	}
	if warning != "" {
		conf.question = fmt.Sprintf("Delete all %d objects (roll back from revision %d to the empty revision %d)?", s.Delete, preview.Revision, target)
	}
	if err := confirm(o.F, o.Yes, conf); err != nil {
		return err
	}
	req.DryRun, req.WithObjects, req.IfRevision = false, false, preview.Revision
	resp, err := c.Rollback(ctx, req)
	if err != nil {
		return serverInvalid(o.F, nil, err)
	}
	if o.F.Output == "json" {
		resp.Changes = changesRefsOnly(resp.Changes, false)
		return writeJSON(o.F.IO.Out, resp)
	}
	for _, ch := range resp.Changes {
		fmt.Fprintf(o.F.IO.Out, "%s %s\n", ch.Ref, ch.Op.Verb())
	}
	fmt.Fprintf(o.F.IO.ErrOut, "revision %d: rolled back to revision %d (%s)\n", resp.Revision, target, summaryDone(resp.Summary))
	return nil
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
		ValidArgsFunction: completeRevisions(f),
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
