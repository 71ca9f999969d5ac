package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// dataPlaneNames are how `stoa get` names data planes: live state of a
// control plane, not a spec kind.
var dataPlaneNames = []string{"dataplanes", "dataplane", "dp"}

func isDataPlanes(s string) bool {
	for _, n := range dataPlaneNames {
		if strings.EqualFold(s, n) {
			return true
		}
	}
	return false
}

// DataPlanesOptions are the inputs of `stoa get dataplanes [NAME]`.
type DataPlanesOptions struct {
	F    *Factory
	Name string
}

// checkDataPlaneFlags refuses the flags of `get` that mean nothing for
// data planes (each serves every tenant; they are not specs).
func checkDataPlaneFlags(cmd *cobra.Command) error {
	for _, fl := range []string{"namespace", "selector", "watch"} {
		if cmd.Flags().Changed(fl) {
			return &hintError{fmt.Errorf("get dataplanes: --%s does not apply: data planes are live state of the control plane, each serving every tenant", fl),
				"list them all with: stoa get dataplanes"}
		}
	}
	return nil
}

// Run lists the data planes (or shows one).
func (o *DataPlanesOptions) Run(ctx context.Context) error {
	list, err := o.F.Client().DataPlanes(ctx)
	if err != nil {
		return err
	}
	items := list.Items
	if o.Name != "" {
		items = nil
		for _, dp := range list.Items {
			if dp.Name == o.Name {
				items = append(items, dp)
			}
		}
		if len(items) == 0 {
			return &hintError{fmt.Errorf("data plane %q not found", o.Name), "list them with: stoa get dataplanes"}
		}
		if o.F.structured() {
			return writeObject(o.F, items[0])
		}
	}
	if done, err := printedList(o.F, api.KindDataPlaneList, map[string]any{"revision": list.Revision}, items); done {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no data planes; on a control plane with --bundle-signing-key, let one join with: stoa fleet join-token create")
		return nil
	}
	now := o.F.Now()
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 3, ' ', 0)
	if o.F.wide() {
		fmt.Fprintln(tw, "NAME\tADDRESS\tREVISION\tLAG\tLAST SEEN\tHEALTH\tDIGEST\tVERSION\tJOINED\tCERTIFICATE EXPIRES\tLAST ERROR")
	} else {
		fmt.Fprintln(tw, "NAME\tADDRESS\tREVISION\tLAG\tLAST SEEN\tHEALTH")
	}
	for _, dp := range items {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s", dp.Name, orDash(dp.Address), dp.Revision, dp.Lag, since(now, dp.LastSeen), dp.Health)
		if o.F.wide() {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s", orDash(shortDigest(dp.Digest)), orDash(dp.Version), when(dp.JoinedAt),
				when(dp.CertificateExpires), orDash(dp.LastError))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// since is how long ago t was, in the largest unit (3s, 2m, 5h, 3d).
func since(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// shortDigest is sha256:abcdef012345 (twelve hex digits, like image IDs).
func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

func newFleetCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Manage the data planes of a control plane: join tokens, revocation",
		Long: `A control plane started with --bundle-signing-key serves data planes: plain
stoads that join it once with a join token, then pull its signed
configuration. List them with: stoa get dataplanes (docs/fleet.md).`,
	}
	cmd.AddCommand(newJoinTokenCmd(f), newDataPlaneCmd(f))
	return cmd
}

func newDataPlaneCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "dataplane",
		Aliases: []string{"dataplanes", "dp"},
		Short:   "Revoke data planes (list them with: stoa get dataplanes)",
	}
	cmd.AddCommand(newDataPlaneRevokeCmd(f))
	return cmd
}

// DataPlaneRevokeOptions are the inputs of `stoa fleet dataplane revoke`.
type DataPlaneRevokeOptions struct {
	F    *Factory
	Name string
}

func newDataPlaneRevokeCmd(f *Factory) *cobra.Command {
	o := &DataPlaneRevokeOptions{F: f}
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Cut a data plane off: its certificates are refused from its next request on",
		Long: `Revoke refuses every certificate of the data plane NAME from its next
request on, renewal included. It keeps serving its last good bundle but gets
no new revision. It can join again only with a token made for NAME after the
revocation (stoa fleet join-token create --name NAME).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return o.Run(cmd.Context())
		},
	}
}

// Run revokes the data plane.
func (o *DataPlaneRevokeOptions) Run(ctx context.Context) error {
	r, err := o.F.Client().RevokeDataPlane(ctx, o.Name)
	if err != nil {
		return err
	}
	if done, err := printed(o.F, r); done {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "data plane %s revoked\n", r.Name)
	fmt.Fprintf(o.F.IO.ErrOut, "to let it join again: stoa fleet join-token create --name %s\n", r.Name)
	return nil
}

func newJoinTokenCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "join-token",
		Aliases: []string{"join-tokens"},
		Short:   "Create, list and revoke the tokens data planes join with",
		Long: `A join token admits one data plane, once: it is spent by the join that
uses it. The secret is printed once, by create; the control plane keeps only
its hash. Making, listing and revoking tokens needs cluster admin.`,
	}
	cmd.AddCommand(newJoinTokenCreateCmd(f), newJoinTokenListCmd(f), newJoinTokenRevokeCmd(f))
	return cmd
}

// JoinTokenCreateOptions are the inputs of `stoa fleet join-token create`.
type JoinTokenCreateOptions struct {
	F    *Factory
	Name string
	TTL  time.Duration
}

func newJoinTokenCreateCmd(f *Factory) *cobra.Command {
	o := &JoinTokenCreateOptions{F: f}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a join token and print it (once)",
		Long: `Create makes a join token and prints it on stdout: the only time it is
shown. --name makes it admit only the data plane of that name (which then
takes it, when started without --name). It expires after --ttl (1m to 168h)
unless used before.`,
		Example: "  stoa fleet join-token create --name edge-1 --ttl 1h\n" +
			"  STOA_JOIN_TOKEN=$(stoa fleet join-token create --name edge-1) …",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	cmd.Flags().StringVar(&o.Name, "name", "", "the only data plane name the token admits")
	cmd.Flags().DurationVar(&o.TTL, "ttl", time.Hour, "how long the token may be used (1m to 168h)")
	return cmd
}

// Run creates the token.
func (o *JoinTokenCreateOptions) Run(ctx context.Context) error {
	if o.TTL < time.Minute || o.TTL > 168*time.Hour {
		return &hintError{fmt.Errorf("join-token create: --ttl %s is out of range", o.TTL),
			"a join token lives from 1m to 168h (7 days); make one when the data plane is about to join"}
	}
	t, err := o.F.Client().CreateJoinToken(ctx, &api.JoinTokenCreateRequest{Name: o.Name, TTL: o.TTL.String()})
	if err != nil {
		return err
	}
	if done, err := printed(o.F, t); done {
		return err
	}
	fmt.Fprintln(o.F.IO.Out, t.Token)
	scope := "any data plane name"
	if t.Name != "" {
		scope = "data plane " + t.Name
	}
	fmt.Fprintf(o.F.IO.ErrOut, "join token %s for %s, until %s; it is not shown again\n", t.ID, scope, when(t.ExpiresAt))
	fmt.Fprintln(o.F.IO.ErrOut, "on the data plane: STOA_JOIN_TOKEN=<the token> stoad --join <this control plane's URL> --bundle-key cosign.pub")
	return nil
}

// JoinTokenListOptions are the inputs of `stoa fleet join-token list`.
type JoinTokenListOptions struct{ F *Factory }

func newJoinTokenListCmd(f *Factory) *cobra.Command {
	o := &JoinTokenListOptions{F: f}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List join tokens (never their secrets)",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
}

// Run lists the tokens.
func (o *JoinTokenListOptions) Run(ctx context.Context) error {
	list, err := o.F.Client().JoinTokens(ctx)
	if err != nil {
		return err
	}
	if done, err := printedList(o.F, "JoinTokenList", nil, list.Items); done {
		return err
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no join tokens; make one with: stoa fleet join-token create --name NAME")
		return nil
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tCREATED\tEXPIRES\tCREATED BY\tUSED BY")
	for _, t := range list.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, orDash(t.Name), t.State, when(t.CreatedAt), when(t.ExpiresAt),
			orDash(t.CreatedBy), orDash(t.UsedBy))
	}
	return tw.Flush()
}

// JoinTokenRevokeOptions are the inputs of `stoa fleet join-token revoke`.
type JoinTokenRevokeOptions struct {
	F  *Factory
	ID string
}

func newJoinTokenRevokeCmd(f *Factory) *cobra.Command {
	o := &JoinTokenRevokeOptions{F: f}
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Delete a join token (by its ID, or a unique prefix of six or more digits)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return o.Run(cmd.Context())
		},
	}
}

// Run revokes the token.
func (o *JoinTokenRevokeOptions) Run(ctx context.Context) error {
	r, err := o.F.Client().RevokeJoinToken(ctx, o.ID)
	if err != nil {
		return err
	}
	if done, err := printed(o.F, r); done {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "join token %s revoked\n", r.ID)
	return nil
}
