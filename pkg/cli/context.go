package cli

import (
	"errors"
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/cliconfig"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/login"
)

func newContextCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "Manage contexts: the local stoad, or remote control planes",
		Long: `A context is what stoa talks to: "local" (built in) is the stoad on this machine
over its unix socket; the others are control planes over HTTPS, each with the
OIDC issuer its users log in with (stoa login). Every command works the same on
every context: same output, same -o json, same exit codes.

Contexts live in $XDG_CONFIG_HOME/stoa/config.yaml ($STOA_CONFIG overrides).
A command's context is the first of: --context, --socket (the local stoad at
that socket), $STOA_CONTEXT, $STOA_SOCKET, the current context (stoa context
use), local.`,
		Example: `  stoa context add prod --server https://cp.example.com:7443 --issuer https://idp.example.com/realms/acme --use
  stoa login
  stoa context list
  stoa get tools --context local`,
	}
	cmd.AddCommand(newContextAddCmd(f), newContextUseCmd(f), newContextListCmd(f), newContextCurrentCmd(f), newContextDeleteCmd(f))
	return cmd
}

// ContextAddOptions are the inputs of `stoa context add`.
type ContextAddOptions struct {
	F                                  *Factory
	Name                               string
	Server, Issuer, ClientID, Audience string
	Scopes                             []string
	Fingerprint, IssuerFingerprint     string
	Use, Overwrite                     bool
}

func newContextAddCmd(f *Factory) *cobra.Command {
	o := &ContextAddOptions{F: f}
	cmd := noOutput(&cobra.Command{
		Use:   "add NAME --server URL [--issuer URL]",
		Short: "Add a context: a control plane and the issuer to log in with",
		Long: `Add stores a context in the configuration file. --server is the control plane's
HTTPS URL (plain http only on loopback), or unix:///path/to.sock for another
local stoad. --issuer is the OpenID Connect issuer its users log in with.

A control plane with a self-signed certificate is trusted only through its
pinned SHA-256 fingerprint (--fingerprint; --issuer-fingerprint for the
issuer). Get it on the server, never from the network:
  openssl x509 -noout -fingerprint -sha256 -in server.crt`,
		Example: `  stoa context add prod --server https://cp.example.com:7443 --issuer https://idp.example.com/realms/acme --use
  stoa context add dev --server https://127.0.0.1:7443 --issuer https://127.0.0.1:8443 \
    --fingerprint SHA256:AB:CD:… --issuer-fingerprint SHA256:12:34:…
  stoa context add ci --server https://cp.example.com:7443 --issuer https://idp.example.com --client-id ci-deployer`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return o.Run()
		},
	})
	fl := cmd.Flags()
	fl.StringVar(&o.Server, "server", "", "the control plane's URL, https://host[:port][/path] (or unix:///path/to.sock)")
	fl.StringVar(&o.Issuer, "issuer", "", "the OpenID Connect issuer to log in with")
	fl.StringVar(&o.ClientID, "client-id", "", "the OAuth client to log in as (default "+login.DefaultClientID+")")
	fl.StringVar(&o.Audience, "audience", "", "audience to request for access tokens (issuers that pick aud from the request)")
	fl.StringSliceVar(&o.Scopes, "scope", nil, "scopes to request instead of openid, offline_access (repeatable)")
	fl.StringVar(&o.Fingerprint, "fingerprint", "", "pin the control plane's certificate by its SHA-256 fingerprint (SHA256:AB:CD:…)")
	fl.StringVar(&o.IssuerFingerprint, "issuer-fingerprint", "", "pin the issuer's certificate by its SHA-256 fingerprint")
	fl.BoolVar(&o.Use, "use", false, "make it the current context")
	fl.BoolVar(&o.Overwrite, "overwrite", false, "replace a context of the same name")
	return cmd
}

// Run adds the context.
func (o *ContextAddOptions) Run() error {
	if o.Server == "" {
		return &hintError{err: errors.New("--server is required"), hint: "e.g. --server https://cp.example.com:7443"}
	}
	cfg, err := o.F.loadConfig()
	if err != nil {
		return err
	}
	_, getErr := cfg.Get(o.Name)
	exists := getErr == nil && o.Name != cliconfig.LocalContext
	if exists && !o.Overwrite {
		return &hintError{err: fmt.Errorf("context %q already exists", o.Name),
			hint: "replace it with --overwrite (its stored login stays valid while issuer, client and audience stay the same)"}
	}
	x := cliconfig.Context{Name: o.Name, Server: o.Server, Issuer: o.Issuer, ClientID: o.ClientID, Audience: o.Audience,
		Scopes: o.Scopes, Fingerprint: o.Fingerprint, IssuerFingerprint: o.IssuerFingerprint}
	if _, err := cfg.Set(x); err != nil {
		return err
	}
	if o.Use {
		if err := cfg.Use(o.Name); err != nil {
			return err
		}
	}
	if err := cfg.Save(); err != nil {
		return err
	}
	errOut := o.F.IO.ErrOut
	verb := "added"
	if exists {
		verb = "replaced"
	}
	fmt.Fprintf(errOut, "%s context %q (%s) in %s\n", verb, o.Name, o.Server, cfg.Path())
	if o.Use {
		fmt.Fprintf(errOut, "switched to context %q\n", o.Name)
		o.F.warnOverrides(o.Name)
	}
	x, _ = cfg.Get(o.Name)
	switch {
	case x.IsLocal():
	case x.Issuer != "":
		fmt.Fprintf(errOut, "log in with: stoa login --context %s\n", o.Name)
	default:
		fmt.Fprintf(errOut, "note: context %q has no issuer: its requests carry a token only when STOA_TOKEN is set\n", o.Name)
	}
	return nil
}

// warnOverrides says when the environment overrides the current context
// just set, as docker does.
func (f *Factory) warnOverrides(name string) {
	if v := f.getenv(cliconfig.EnvContext); v != "" {
		if v != name {
			fmt.Fprintf(f.IO.ErrOut, "warning: $%s=%s overrides the current context in this shell; unset it to use %q\n", cliconfig.EnvContext, v, name)
		}
		return
	}
	if v := f.getenv(api.SocketEnv); v != "" && name != cliconfig.LocalContext {
		fmt.Fprintf(f.IO.ErrOut, "warning: $%s=%s selects the local stoad in this shell, overriding the current context; unset it to use %q\n", api.SocketEnv, v, name)
	}
}

// ContextUseOptions are the inputs of `stoa context use`.
type ContextUseOptions struct {
	F    *Factory
	Name string
}

func newContextUseCmd(f *Factory) *cobra.Command {
	o := &ContextUseOptions{F: f}
	return noOutput(&cobra.Command{
		Use:               "use NAME",
		Short:             "Make a context the current one",
		Example:           "  stoa context use prod\n  stoa context use local",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeContextArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return o.Run()
		},
	})
}

// Run switches the current context.
func (o *ContextUseOptions) Run() error {
	cfg, err := o.F.loadConfig()
	if err != nil {
		return err
	}
	if err := cfg.Use(o.Name); err != nil {
		return err
	}
	if err := cfg.Save(); err != nil {
		return err
	}
	x, _ := cfg.Get(o.Name)
	fmt.Fprintf(o.F.IO.ErrOut, "switched to context %q (%s)\n", o.Name, describeServer(x))
	o.F.warnOverrides(o.Name)
	return nil
}

// describeServer names where a context points, for people.
func describeServer(x cliconfig.Context) string {
	if x.Name == cliconfig.LocalContext && x.Server == "" {
		return "the local stoad's socket"
	}
	return x.Server
}

// ContextItem is one context of `stoa context list -o json`.
type ContextItem struct {
	cliconfig.Context
	// Current marks the context commands use now.
	Current bool `json:"current"`
}

// ContextListOptions are the inputs of `stoa context list`.
type ContextListOptions struct{ F *Factory }

func newContextListCmd(f *Factory) *cobra.Command {
	o := &ContextListOptions{F: f}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the contexts; * marks the one commands use now",
		Long: `List prints every context, local first. CURRENT (*) marks the context commands
use now, which --context, --socket, $STOA_CONTEXT or $STOA_SOCKET can make
another than the configuration's current context. -o json prints a ContextList.`,
		Example: "  stoa context list\n  stoa context list -o wide\n  stoa context list -o json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run() },
	}
}

// Run lists the contexts.
func (o *ContextListOptions) Run() error {
	cfg, err := o.F.loadConfig()
	if err != nil {
		return err
	}
	current, source := cfg.Current(), string(cliconfig.SourceConfig)
	if t, err := o.F.resolveTarget(); err == nil {
		current, source = t.ctx.Name, t.source
	}
	var items []ContextItem
	for _, x := range cfg.List() {
		items = append(items, ContextItem{Context: x, Current: x.Name == current})
	}
	if !slices.ContainsFunc(items, func(it ContextItem) bool { return it.Current }) {
		fmt.Fprintf(o.F.IO.ErrOut, "warning: the current context %q does not exist\n", current)
	}
	if done, err := printedList(o.F, "ContextList", map[string]any{"current": current, "source": source}, items); done {
		return err
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	header := "CURRENT\tNAME\tSERVER\tISSUER"
	if o.F.wide() {
		header += "\tCLIENT ID\tAUDIENCE\tFINGERPRINT\tISSUER FINGERPRINT"
	}
	fmt.Fprintln(tw, header)
	for _, it := range items {
		mark := ""
		if it.Current {
			mark = "*"
		}
		server := it.Server
		if it.Name == cliconfig.LocalContext {
			server = "unix://" + o.F.localSocket()
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s", mark, it.Name, server, dash(it.Issuer))
		if o.F.wide() {
			clientID := it.ClientID
			if clientID == "" && it.Issuer != "" {
				clientID = login.DefaultClientID
			}
			line += fmt.Sprintf("\t%s\t%s\t%s\t%s", dash(clientID), dash(it.Audience), dash(it.Fingerprint), dash(it.IssuerFingerprint))
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if source != string(cliconfig.SourceConfig) && source != string(cliconfig.SourceDefault) {
		fmt.Fprintf(o.F.IO.ErrOut, "(%s selects %s)\n", source, current)
	}
	return nil
}

// localSocket is the socket the local context uses now.
func (f *Factory) localSocket() string {
	if t, err := f.resolveTarget(); err == nil && t.ctx.Name == cliconfig.LocalContext {
		return t.socket
	}
	s := f.Socket
	if s == "" {
		s = f.getenv(api.SocketEnv)
	}
	return client.ResolveSocket(s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// CurrentContext is what `stoa context current -o json` prints.
type CurrentContext struct {
	cliconfig.Context
	// Endpoint is the socket or URL commands talk to.
	Endpoint string `json:"endpoint"`
	// Source is what selected the context.
	Source string `json:"source"`
}

// ContextCurrentOptions are the inputs of `stoa context current`.
type ContextCurrentOptions struct{ F *Factory }

func newContextCurrentCmd(f *Factory) *cobra.Command {
	o := &ContextCurrentOptions{F: f}
	return &cobra.Command{
		Use:   "current",
		Short: "Print the context commands use now",
		Long: `Current prints the name of the context commands use now (taking --context,
--socket, $STOA_CONTEXT and $STOA_SOCKET into account); -o wide adds where it
points and what selected it; -o json prints all of it.`,
		Example: "  stoa context current\n  stoa context current -o json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run() },
	}
}

// Run prints the current context.
func (o *ContextCurrentOptions) Run() error {
	t, err := o.F.resolveTarget()
	if err != nil {
		return err
	}
	cur := CurrentContext{Context: t.ctx, Endpoint: t.ctx.Server, Source: t.source}
	if t.ctx.IsLocal() {
		cur.Endpoint = t.socket
	}
	if done, err := printed(o.F, cur); done {
		return err
	}
	if !o.F.wide() {
		_, err := fmt.Fprintln(o.F.IO.Out, cur.Name)
		return err
	}
	tw := tabwriter.NewWriter(o.F.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tENDPOINT\tSOURCE")
	fmt.Fprintf(tw, "%s\t%s\t%s\n", cur.Name, cur.Endpoint, cur.Source)
	return tw.Flush()
}

// ContextDeleteOptions are the inputs of `stoa context delete`.
type ContextDeleteOptions struct {
	F    *Factory
	Name string
}

func newContextDeleteCmd(f *Factory) *cobra.Command {
	o := &ContextDeleteOptions{F: f}
	return noOutput(&cobra.Command{
		Use:               "delete NAME",
		Aliases:           []string{"rm"},
		Short:             "Delete a context and its stored login",
		Long:              "Delete removes a context from the configuration and its token from the keyring\nor the token file. Deleting the current context makes local current.",
		Example:           "  stoa context delete staging",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeContextArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return o.Run()
		},
	})
}

// Run deletes the context, then its token.
func (o *ContextDeleteOptions) Run() error {
	cfg, err := o.F.loadConfig()
	if err != nil {
		return err
	}
	wasCurrent, err := cfg.Delete(o.Name)
	if err != nil {
		return err
	}
	if err := cfg.Save(); err != nil {
		return err
	}
	errOut := o.F.IO.ErrOut
	fmt.Fprintf(errOut, "deleted context %q\n", o.Name)
	if wasCurrent {
		fmt.Fprintf(errOut, "the current context is %s now\n", cliconfig.LocalContext)
	}
	store, err := o.F.tokenStore()
	if err != nil {
		return fmt.Errorf("deleted the context, but not its token: %w", err)
	}
	removed, err := store.Delete(o.Name)
	if err != nil {
		return fmt.Errorf("deleted the context, but not its token: %w", err)
	}
	if len(removed) > 0 {
		fmt.Fprintf(errOut, "removed its token from %s\n", describeBackends(store, o.Name, removed))
	}
	return nil
}

// describeBackends names where tokens were removed from.
func describeBackends(s *login.Store, key string, bs []login.Backend) string {
	var parts []string
	for _, b := range bs {
		if b == login.BackendKeyring {
			parts = append(parts, "the OS keyring")
		} else {
			parts = append(parts, s.Path(key))
		}
	}
	if len(parts) == 2 {
		return parts[0] + " and " + parts[1]
	}
	return parts[0]
}

// completeContexts offers the context names (for --context).
func (f *Factory) completeContexts(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	cfg, err := f.loadConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, x := range cfg.List() {
		out = append(out, x.Name+"\t"+describeServer(x))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeContextArg offers the context names for a command's one
// argument.
func (f *Factory) completeContextArg(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return f.completeContexts(cmd, args, prefix)
}
