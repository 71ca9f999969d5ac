package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/plan"
	"github.com/stoa-gateway/stoa/pkg/spec"
	"github.com/stoa-gateway/stoa/pkg/specload"
)

// ValidateOptions are the inputs of `stoa validate`.
type ValidateOptions struct {
	F          *Factory
	Files      fileFlags
	StrictRefs bool
}

func newValidateCmd(f *Factory) *cobra.Command {
	o := &ValidateOptions{F: f}
	cmd := &cobra.Command{
		Use:   "validate -f PATH...",
		Short: "Check specs offline (no daemon needed)",
		Long: `Validate reads specs and reports every problem as file:line:col with the
offending line and a hint. It needs no daemon: a reference to an object the
given files do not define (a Tool of a tenant that lives in stoad, a grant
in the Gateway) is a note, checked against the live state by diff and
apply; --strict-refs makes it an error. Exit code 3 when the specs are
invalid.`,
		Example: "  stoa validate -f examples/quickstart/\n  cat tool.yaml | stoa validate -f -\n  stoa validate --strict-refs -f specs/",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run() },
	}
	o.Files.bind(cmd)
	cmd.Flags().BoolVar(&o.StrictRefs, "strict-refs", false, "fail on references to objects the files do not define (instead of a note)")
	return cmd
}

// Run validates the files.
func (o *ValidateOptions) Run() error {
	if err := o.Files.required(); err != nil {
		return err
	}
	refs := specload.ReferencesOffline
	if o.StrictRefs {
		refs = specload.ReferencesStrict
	}
	res, err := load(o.F, o.Files.Paths, specload.Options{References: refs}, !o.F.structured())
	if err != nil {
		return err
	}
	objs, diags := res.Objects, res.Diagnostics
	if o.F.structured() {
		if diags == nil {
			diags = spec.Diagnostics{}
		}
		return writeObject(o.F, ValidationResult{Valid: true, Objects: len(objs), Diagnostics: diags})
	}
	counts := map[spec.Kind]int{}
	for _, obj := range objs {
		counts[obj.Kind]++
	}
	var parts []string
	for _, k := range spec.Kinds {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	detail := ""
	if len(parts) > 0 {
		detail = " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(o.F.IO.Out, "valid: %d %s%s\n", len(objs), plural(len(objs), "object", "objects"), detail)
	return nil
}

// ValidationResult is what validate (and a command refused for invalid
// specs) prints for -o json and -o yaml.
type ValidationResult struct {
	Valid       bool             `json:"valid"`
	Objects     int              `json:"objects,omitempty"`
	Diagnostics spec.Diagnostics `json:"diagnostics"`
}

// ApplyOptions are the inputs of `stoa apply` and `stoa diff` (diff is
// apply in dry-run: one code path).
type ApplyOptions struct {
	F        *Factory
	Files    fileFlags
	Prune    bool
	PruneAll bool
	Selector labelSelector
	DryRun   bool
	Message  string
	Force    bool // change a stoad in GitOps mode anyway
	Diff     bool // stoa diff: print the plan, exit 2 on changes
	Brief    bool
}

func newApplyCmd(f *Factory) *cobra.Command {
	o := &ApplyOptions{F: f}
	cmd := &cobra.Command{
		Use:   "apply -f PATH...",
		Short: "Make the specs live as one new revision",
		Long: `Apply validates the specs, then asks stoad to make them live atomically: the
whole set becomes one new revision or nothing changes. Applying identical
specs is a no-op (no new revision).

--prune deletes objects absent from the files, only within the tenants the
files cover (or everywhere with --prune-all), optionally only those carrying
the labels given with -l.`,
		Example: "  stoa apply -f examples/quickstart/\n  stoa apply -f specs/ --prune\n  stoa apply -f specs/ --dry-run",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	o.bind(cmd)
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "show what would change without changing anything")
	cmd.Flags().StringVarP(&o.Message, "message", "m", "", "note stored with the revision")
	cmd.Flags().BoolVar(&o.Force, "force", false, "apply even though stoad runs in GitOps mode (--specs); the next change of its directory overwrites it")
	return cmd
}

func newDiffCmd(f *Factory) *cobra.Command {
	o := &ApplyOptions{F: f, Diff: true, DryRun: true}
	cmd := &cobra.Command{
		Use:   "diff -f PATH...",
		Short: "Show what apply would change (exit 2 when it would change something)",
		Long: `Diff computes exactly what apply would do — it is apply in dry-run — and
prints a unified diff per object (secrets masked). Exit code 0 when nothing
would change, 2 when something would.`,
		Example: "  stoa diff -f examples/quickstart/\n  stoa diff -f specs/ --prune -o json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	o.bind(cmd)
	cmd.Flags().BoolVar(&o.Brief, "brief", false, "one line per changed object")
	return cmd
}

func (o *ApplyOptions) bind(cmd *cobra.Command) {
	o.Files.bind(cmd)
	cmd.Flags().BoolVar(&o.Prune, "prune", false, "delete objects absent from the files, within the tenants they cover")
	cmd.Flags().BoolVar(&o.PruneAll, "prune-all", false, "delete every object absent from the files, in all tenants")
	cmd.Flags().VarP(&selectorValue{sel: &o.Selector}, "selector", "l", "with --prune: only objects carrying these labels (k=v,...)")
}

// Run applies, or plans, the specs.
func (o *ApplyOptions) Run(ctx context.Context) error {
	if err := o.Files.required(); err != nil {
		return err
	}
	selector, err := o.Selector.equalities("-l")
	if err != nil {
		return err
	}
	loaded, err := loadForApply(o.F, o.Files.Paths)
	if err != nil {
		return err
	}
	objs := loaded.Objects
	// Most applies in CI change nothing: when every object already matches
	// its live digest (and nothing could be pruned), say so without sending
	// the objects. Any doubt — another CLI version's defaults, a change
	// racing ours — just means the full request below decides.
	if resp := o.unchanged(ctx, objs); resp != nil {
		if o.Diff {
			return o.printDiff(resp)
		}
		return o.printApply(resp)
	}
	req := &api.ApplyRequest{
		DryRun:      o.DryRun,
		Prune:       o.Prune || o.PruneAll,
		Scope:       pruneScope(objs, o.PruneAll, selector),
		Message:     o.Message,
		Force:       o.Force,
		WithObjects: o.needsObjects(),
	}
	wire, err := loaded.EncodeRaw()
	if err != nil {
		return err
	}
	resp, err := o.F.Client().ApplyEncoded(ctx, req, wire)
	if err != nil {
		return serverInvalid(o.F, objs, err)
	}
	if o.Diff {
		return o.printDiff(resp)
	}
	return o.printApply(resp)
}

// needsObjects reports whether what is printed shows the changed objects:
// a diff's text (unless --brief) and the structured output of a diff or
// dry run. One line per change needs none, and 10,000 objects are most of
// a large answer: encoding, sending and decoding them.
func (o *ApplyOptions) needsObjects() bool {
	if o.F.structured() {
		return o.Diff || o.DryRun
	}
	return o.Diff && !o.Brief
}

// unchanged returns a no-op answer when the live objects provably equal
// the desired ones, else nil.
func (o *ApplyOptions) unchanged(ctx context.Context, objs []*spec.Object) *api.ApplyResponse {
	live, err := o.F.Client().Digests(ctx)
	if err != nil {
		return nil // an older stoad, or unreachable: the apply will say
	}
	byRef := make(map[spec.Ref]plan.Digest, len(live.Items))
	for _, it := range live.Items {
		byRef[it.Ref] = it.Digest
	}
	for _, obj := range objs {
		if _, ok := byRef[obj.Ref()]; !ok {
			return nil // a new object: no need to digest anything
		}
	}
	desired := plan.DigestAll(objs) // on all processors
	for ref, dg := range desired {
		if byRef[ref] != dg {
			return nil
		}
	}
	if o.Prune || o.PruneAll {
		// Pruning could delete a live object the files lack; only when
		// there is none is the answer certain here.
		for ref := range byRef {
			if _, ok := desired[ref]; !ok {
				return nil
			}
		}
	}
	return &api.ApplyResponse{Changes: []plan.Change{}, Summary: plan.Summary{Unchanged: len(objs)},
		Revision: live.Revision, DryRun: o.DryRun}
}

// DiffResult is what diff prints for -o json and -o yaml.
type DiffResult struct {
	Changes  []plan.JSONChange `json:"changes"`
	Summary  plan.Summary      `json:"summary"`
	Revision int64             `json:"revision"`
}

func (o *ApplyOptions) printDiff(resp *api.ApplyResponse) error {
	out := o.F.IO
	if o.F.structured() {
		if err := writeObject(o.F, DiffResult{Changes: plan.MaskChanges(resp.Changes), Summary: resp.Summary, Revision: resp.Revision}); err != nil {
			return err
		}
	} else if err := plan.RenderText(out.Out, resp.Changes, plan.RenderOptions{Color: out.ColorOut(), Brief: o.Brief}); err != nil {
		return err
	}
	if resp.Summary.Empty() {
		if !o.F.structured() {
			fmt.Fprintf(out.ErrOut, "no changes (revision %d)\n", resp.Revision)
		}
		return nil
	}
	if !o.F.structured() {
		fmt.Fprintf(out.ErrOut, "Plan: %s.\n", resp.Summary)
	}
	return silent(ExitChanges)
}

func (o *ApplyOptions) printApply(resp *api.ApplyResponse) error {
	out := o.F.IO
	if o.F.structured() {
		resp.Changes = changesRefsOnly(resp.Changes, o.DryRun)
		return writeObject(o.F, resp)
	}
	if o.DryRun {
		if err := plan.RenderText(out.Out, resp.Changes, plan.RenderOptions{Color: out.ColorOut(), Brief: true}); err != nil {
			return err
		}
		fmt.Fprintf(out.ErrOut, "dry run: %s; nothing changed (revision %d)\n", resp.Summary, resp.Revision)
		return nil
	}
	for _, c := range resp.Changes {
		fmt.Fprintf(out.Out, "%s %s\n", c.Ref, c.Op.Verb())
	}
	if !resp.Created {
		fmt.Fprintf(out.ErrOut, "no changes; revision %d unchanged\n", resp.Revision)
		return nil
	}
	s := resp.Summary
	fmt.Fprintf(out.ErrOut, "revision %d applied: %d created, %d updated, %d deleted, %d unchanged\n",
		resp.Revision, s.Create, s.Update, s.Delete, s.Unchanged)
	return nil
}

// changesRefsOnly keeps the stable JSON small: op and ref per change
// (objects only for dry runs, masked).
func changesRefsOnly(changes []plan.Change, keep bool) []plan.Change {
	out := make([]plan.Change, len(changes))
	for i, c := range changes {
		out[i] = plan.Change{Op: c.Op, Ref: c.Ref}
		if keep {
			out[i].Before, out[i].After = c.Before, c.After
		}
	}
	return out
}
