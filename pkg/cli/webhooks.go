package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
)

func newWebhooksCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhooks",
		Aliases: []string{"webhook", "wh"},
		Short:   "Inspect webhook deliveries, redeliver, send test events",
		Long: `Webhook specs subscribe a URL to lifecycle events (subscription.*, key.*,
config.applied, quota.exhausted). stoad delivers each event from a durable
outbox, HMAC-signed (X-Stoa-Signature: t=…,v1=…), at least once, retrying with
exponential backoff until the Webhook's maxAttempts; see docs/webhooks.md.`,
	}
	cmd.AddCommand(newWebhookDeliveriesCmd(f), newWebhookShowCmd(f), newWebhookRedeliverCmd(f), newWebhookTestCmd(f))
	return cmd
}

// WebhookDeliveriesOptions are the inputs of `stoa webhooks deliveries`.
type WebhookDeliveriesOptions struct {
	F               *Factory
	Namespace, Name string
	State           string
	All             bool
	Limit           int
}

func newWebhookDeliveriesCmd(f *Factory) *cobra.Command {
	o := &WebhookDeliveriesOptions{F: f}
	cmd := &cobra.Command{
		Use:   "deliveries [NAME] [-n TENANT]",
		Short: "List deliveries, newest first: state, attempts, response code",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Name = args[0]
			}
			return o.Run(cmd.Context())
		},
	}
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().BoolVarP(&o.All, "all-namespaces", "A", false, "deliveries of every tenant")
	enumFlag(cmd, &o.State, "state", "", "", "only pending, succeeded or failed deliveries", "pending", "succeeded", "failed")
	cmd.Flags().IntVar(&o.Limit, "limit", 50, "at most this many")
	return cmd
}

// Run lists the deliveries.
func (o *WebhookDeliveriesOptions) Run(ctx context.Context) error {
	ns := o.Namespace
	if o.All {
		ns = ""
	}
	list, err := o.F.Client().WebhookDeliveries(ctx, client.DeliveriesOptions{Namespace: ns, Webhook: o.Name, State: o.State, Limit: o.Limit})
	if err != nil {
		return err
	}
	if done, err := printedList(o.F, "WebhookDeliveryList", nil, list.Items); done {
		return err
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(o.F.IO.ErrOut, "no deliveries")
		return nil
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tWEBHOOK\tEVENT\tSTATE\tATTEMPTS\tCODE\tLAST ATTEMPT\tNEXT ATTEMPT\tERROR")
	for _, d := range list.Items {
		code := "-"
		if d.LastStatus != 0 {
			code = fmt.Sprint(d.LastStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.ID, d.Tenant, d.Webhook, d.EventType, d.State, d.Attempts,
			code, when(d.LastAttemptAt), when(d.NextAttemptAt), orDash(truncateText(d.LastError, 60)))
	}
	return tw.Flush()
}

func truncateText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// WebhookShowOptions are the inputs of `stoa webhooks show`.
type WebhookShowOptions struct {
	F  *Factory
	ID string
}

func newWebhookShowCmd(f *Factory) *cobra.Command {
	o := &WebhookShowOptions{F: f}
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one delivery with its signed payload",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return o.Run(cmd.Context())
		},
	}
}

// Run shows the delivery.
func (o *WebhookShowOptions) Run(ctx context.Context) error {
	d, err := o.F.Client().WebhookDelivery(ctx, o.ID)
	if err != nil {
		return err
	}
	if done, err := printed(o.F, d); done {
		return err
	}
	printDelivery(o.F, d)
	if d.Body != nil {
		b, _ := json.MarshalIndent(d.Body, "", "  ")
		fmt.Fprintf(o.F.IO.Out, "payload:\n%s\n", b)
	}
	return nil
}

func printDelivery(f *Factory, d *api.WebhookDelivery) {
	tw := tabwriter.NewWriter(f.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "delivery:\t%s\n", d.ID)
	fmt.Fprintf(tw, "webhook:\t%s/%s\n", d.Tenant, d.Webhook)
	fmt.Fprintf(tw, "event:\t%s (%s)\n", d.EventType, d.EventID)
	if d.RedeliveryOf != "" {
		fmt.Fprintf(tw, "redelivery of:\t%s\n", d.RedeliveryOf)
	}
	fmt.Fprintf(tw, "state:\t%s after %d attempt(s)\n", d.State, d.Attempts)
	if d.LastStatus != 0 {
		fmt.Fprintf(tw, "response:\tHTTP %d in %s\n", d.LastStatus, d.LastDuration.Round(time.Millisecond))
	}
	if d.LastError != "" {
		fmt.Fprintf(tw, "error:\t%s\n", d.LastError)
	}
	if !d.NextAttemptAt.IsZero() && d.State == "pending" {
		fmt.Fprintf(tw, "next attempt:\t%s\n", when(d.NextAttemptAt))
	}
	tw.Flush()
}

// reportAttempt prints the outcome of a test or redelivery and turns a
// failed first attempt into exit 1.
func reportAttempt(f *Factory, r *api.WebhookAttemptResponse, noWait bool) error {
	if done, err := printed(f, r); done {
		if err == nil && !noWait && r.Delivery.State != "succeeded" {
			return silent(ExitFailure)
		}
		return err
	}
	d := r.Delivery
	switch {
	case noWait:
		fmt.Fprintf(f.IO.Out, "%s queued for %s/%s\n", d.ID, d.Tenant, d.Webhook)
		return nil
	case d.State == "succeeded":
		fmt.Fprintf(f.IO.Out, "%s delivered to %s/%s: HTTP %d in %s\n", d.ID, d.Tenant, d.Webhook, d.LastStatus, d.LastDuration.Round(time.Millisecond))
		return nil
	case !r.Waited:
		fmt.Fprintf(f.IO.Out, "%s queued for %s/%s; no attempt finished yet\n", d.ID, d.Tenant, d.Webhook)
	default:
		printDelivery(f, &d)
	}
	return &ExitError{Code: ExitFailure, Err: errors.New("delivery did not succeed (yet); follow it with: stoa webhooks deliveries " + d.Webhook + " -n " + d.Tenant)}
}

// WebhookRedeliverOptions are the inputs of `stoa webhooks redeliver`.
type WebhookRedeliverOptions struct {
	F      *Factory
	ID     string
	NoWait bool
}

func newWebhookRedeliverCmd(f *Factory) *cobra.Command {
	o := &WebhookRedeliverOptions{F: f}
	cmd := &cobra.Command{
		Use:   "redeliver ID",
		Short: "Deliver a delivery's event again (a new delivery, same event id)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.NoWait, "no-wait", false, "return once queued, without waiting for the first attempt")
	return cmd
}

// Run queues the redelivery and reports its first attempt.
func (o *WebhookRedeliverOptions) Run(ctx context.Context) error {
	r, err := o.F.Client().Redeliver(ctx, o.ID, o.NoWait)
	if err != nil {
		return err
	}
	return reportAttempt(o.F, r, o.NoWait)
}

// WebhookTestOptions are the inputs of `stoa webhooks test`.
type WebhookTestOptions struct {
	F         *Factory
	Namespace string
	Name      string
	NoWait    bool
}

func newWebhookTestCmd(f *Factory) *cobra.Command {
	o := &WebhookTestOptions{F: f}
	cmd := &cobra.Command{
		Use:   "test NAME -n TENANT",
		Short: "Send a signed webhook.test event to one webhook and report the answer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return o.Run(cmd.Context())
		},
	}
	bindNamespace(f, cmd, &o.Namespace)
	cmd.Flags().BoolVar(&o.NoWait, "no-wait", false, "return once queued, without waiting for the attempt")
	return cmd
}

// Run sends the test event and reports the attempt.
func (o *WebhookTestOptions) Run(ctx context.Context) error {
	if o.Namespace == "" {
		return errors.New("-n TENANT is required")
	}
	r, err := o.F.Client().TestWebhook(ctx, api.WebhookTestRequest{Tenant: o.Namespace, Name: o.Name, NoWait: o.NoWait})
	if err != nil {
		return err
	}
	return reportAttempt(o.F, r, o.NoWait)
}
