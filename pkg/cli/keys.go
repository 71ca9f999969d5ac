package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
)

func newKeysCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage consumers' API keys (create, list, rotate, revoke)",
		Long: `API keys authenticate a Consumer of one tenant. stoad stores only a hash; the
key itself (stoa_sk_…) is printed once, by create and rotate, and never again.`,
	}
	cmd.AddCommand(newKeysCreateCmd(f), newKeysListCmd(f), newKeysRevokeCmd(f), newKeysRotateCmd(f))
	return cmd
}

// KeysCreateOptions are the inputs of `stoa keys create`.
type KeysCreateOptions struct {
	F                         *Factory
	Namespace, Consumer, Name string
	Expires                   string
}

func newKeysCreateCmd(f *Factory) *cobra.Command {
	o := &KeysCreateOptions{F: f}
	cmd := &cobra.Command{
		Use:     "create --consumer NAME -n TENANT",
		Short:   "Create an API key (printed once)",
		Example: "  stoa keys create --consumer web-shop -n acme --expires 90d\n  KEY=$(stoa keys create --consumer web-shop -n acme -o json | jq -r .key)",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().StringVar(&o.Consumer, "consumer", "", "consumer the key belongs to (required)")
	cmd.Flags().StringVar(&o.Name, "name", "", "a label for the key (e.g. ci, laptop)")
	cmd.Flags().StringVar(&o.Expires, "expires", "", "lifetime, e.g. 90d or 720h (default: no expiry)")
	return cmd
}

// Run creates the key.
func (o *KeysCreateOptions) Run(ctx context.Context) error {
	if o.Consumer == "" || o.Namespace == "" {
		return errors.New("--consumer and -n TENANT are required")
	}
	resp, err := o.F.Client().CreateKey(ctx, &api.KeyCreateRequest{
		Tenant: o.Namespace, Consumer: o.Consumer, Name: o.Name, ExpiresIn: o.Expires})
	if err != nil {
		return err
	}
	if done, err := printed(o.F, resp); done {
		return err
	}
	fmt.Fprintln(o.F.IO.Out, resp.Key)
	fmt.Fprintf(o.F.IO.ErrOut, "created key %s for consumer %s in tenant %s; this is the only time it is shown\n",
		resp.Info.Prefix, resp.Info.Consumer, resp.Info.Tenant)
	return nil
}

// KeysListOptions are the inputs of `stoa keys list`.
type KeysListOptions struct {
	F             *Factory
	Namespace     string
	AllNamespaces bool
	Consumer      string
}

func newKeysListCmd(f *Factory) *cobra.Command {
	o := &KeysListOptions{F: f}
	cmd := &cobra.Command{
		Use:   "list [-n TENANT] [--consumer NAME]",
		Short: "List API keys (prefix, state, created, last used, expiry)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	}
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "keys of every tenant")
	cmd.Flags().StringVar(&o.Consumer, "consumer", "", "only this consumer's keys")
	return cmd
}

// Run lists the keys.
func (o *KeysListOptions) Run(ctx context.Context) error {
	opts := client.KeysOptions{Namespace: o.Namespace, Consumer: o.Consumer}
	if o.AllNamespaces {
		opts.Namespace = ""
	}
	list, err := o.F.Client().Keys(ctx, opts)
	if err != nil {
		return err
	}
	if done, err := printedList(o.F, "KeyList", nil, list.Items); done {
		return err
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no keys; create one with: stoa keys create --consumer NAME -n TENANT")
		return nil
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tTENANT\tCONSUMER\tNAME\tSTATE\tCREATED\tLAST USED\tEXPIRES\tNOTE")
	for _, k := range list.Items {
		exp := k.ExpiresAt
		if !k.NotAfter.IsZero() && (exp.IsZero() || k.NotAfter.Before(exp)) {
			exp = k.NotAfter
		}
		// Why a revoked key is revoked (its consumer was deleted, or
		// someone asked) and by whom.
		note := ""
		if k.State == "revoked" && k.RevokedReason != "" {
			note = k.RevokedReason
			if k.RevokedBy != "" {
				note += " (by " + k.RevokedBy + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Tenant, k.Consumer, orDash(k.Name), k.State,
			when(k.CreatedAt), when(k.LastUsedAt), when(exp), orDash(note))
	}
	return tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// KeysRevokeOptions are the inputs of `stoa keys revoke`.
type KeysRevokeOptions struct {
	F  *Factory
	ID string
}

func newKeysRevokeCmd(f *Factory) *cobra.Command {
	o := &KeysRevokeOptions{F: f}
	return &cobra.Command{
		Use:               "revoke ID",
		Short:             "Revoke an API key at once",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeKeyIDs(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return o.Run(cmd.Context())
		},
	}
}

// Run revokes the key.
func (o *KeysRevokeOptions) Run(ctx context.Context) error {
	info, err := o.F.Client().RevokeKey(ctx, o.ID)
	if err != nil {
		return err
	}
	if done, err := printed(o.F, info); done {
		return err
	}
	fmt.Fprintf(o.F.IO.Out, "key %s revoked\n", info.Prefix)
	return nil
}

// KeysRotateOptions are the inputs of `stoa keys rotate`.
type KeysRotateOptions struct {
	F              *Factory
	ID             string
	Grace, Expires string
}

func newKeysRotateCmd(f *Factory) *cobra.Command {
	o := &KeysRotateOptions{F: f}
	cmd := &cobra.Command{
		Use:   "rotate ID [--grace 24h] [--expires 90d|never]",
		Short: "Replace an API key; the old one keeps working for the grace period",
		Long: `Rotate creates the successor of an active key (same tenant, consumer and name)
and prints it once. The old key keeps working for --grace, then stops.

The new key keeps the old one's lifetime, counted from now, like a renewal:
a key created with --expires 90d is replaced by a key that expires 90 days
after the rotation. A key without expiry is replaced by one without expiry.
--expires sets another lifetime; --expires never makes the new key
permanent.`,
		Example:           "  stoa keys rotate k3v7q2m4x5c6b7n2 --grace 24h\n  stoa keys rotate k3v7q2m4x5c6b7n2 --expires 30d",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeKeyIDs(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Grace, "grace", "", "how long the old key keeps working (e.g. 24h; default: ends now)")
	cmd.Flags().StringVar(&o.Expires, "expires", "", "lifetime of the new key, e.g. 90d, or never (default: the old key's lifetime, from now)")
	return cmd
}

// Run rotates the key and prints its successor, once.
func (o *KeysRotateOptions) Run(ctx context.Context) error {
	resp, err := o.F.Client().RotateKey(ctx, o.ID, &api.KeyRotateRequest{Grace: o.Grace, ExpiresIn: o.Expires})
	if err != nil {
		return err
	}
	if done, err := printed(o.F, resp); done {
		return err
	}
	fmt.Fprintln(o.F.IO.Out, resp.Key)
	until := "now"
	if !resp.Old.NotAfter.IsZero() {
		until = "until " + when(resp.Old.NotAfter)
	}
	expiry := "no expiry"
	if !resp.New.ExpiresAt.IsZero() {
		expiry = "expires " + when(resp.New.ExpiresAt)
	}
	fmt.Fprintf(o.F.IO.ErrOut, "new key %s (shown once, %s); old key %s works %s\n", resp.New.Prefix, expiry, resp.Old.Prefix, until)
	return nil
}
