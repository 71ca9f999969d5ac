package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
	"github.com/stoa-gateway/stoa/pkg/mcp/stdio"
)

// MCPOptions are the inputs of `stoa mcp`.
type MCPOptions struct {
	F *Factory
	// Socket is stoad's MCP unix socket (used when URL is empty).
	Socket string
	// URL is a remote MCP endpoint, e.g. https://gw.example.com/mcp.
	URL string
	// Token is sent as a bearer credential (API key or JWT).
	Token string
	// Tenant narrows an admin's view (the socket owner's) to one tenant.
	Tenant  string
	Verbose bool
}

func newMCPCmd(f *Factory) *cobra.Command {
	o := &MCPOptions{F: f}
	cmd := noOutput(&cobra.Command{
		Use:   "mcp",
		Short: "Serve stoad's MCP tools on stdin/stdout (for stdio-only MCP clients)",
		Long: `stoa mcp bridges an MCP client that speaks the stdio transport (Claude Desktop,
IDE agents, …) to stoad's MCP server: each JSON-RPC line read on stdin is sent to
stoad and every answer and notification is written to stdout, one per line.

By default it uses stoad's MCP unix socket, where the socket's owner needs no
credential and sees every tenant's tools (narrow the view with --tenant). With
--url it talks to a remote stoad over Streamable HTTP and authenticates with
--token (an API key or a JWT; default $STOA_TOKEN).

Diagnostics go to stderr; stdout carries only MCP messages.`,
		Example: `  # Claude Desktop (claude_desktop_config.json):
  #   {"mcpServers": {"stoa": {"command": "stoa", "args": ["mcp"]}}}
  stoa mcp
  stoa mcp --tenant acme
  STOA_TOKEN=stoa_sk_… stoa mcp --url https://gw.example.com/mcp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.Run(cmd.Context()) },
	})
	def := os.Getenv("STOA_MCP_SOCKET")
	if def == "" {
		def = api.DefaultMCPSocket()
	}
	cmd.Flags().StringVar(&o.Socket, "mcp-socket", def, "stoad's MCP unix socket (env STOA_MCP_SOCKET)")
	cmd.Flags().StringVar(&o.URL, "url", "", "remote MCP endpoint URL instead of the socket, e.g. https://gw.example.com/mcp")
	cmd.Flags().StringVar(&o.Token, "token", os.Getenv("STOA_TOKEN"), "bearer credential: an API key or a JWT (env STOA_TOKEN)")
	cmd.Flags().StringVar(&o.Tenant, "tenant", "", "narrow an admin view to one tenant's tools")
	cmd.Flags().BoolVarP(&o.Verbose, "verbose", "v", false, "log the bridge's diagnostics to stderr")
	return cmd
}

// Run bridges stdin and stdout to stoad's MCP server until stdin ends or
// ctx is done.
func (o *MCPOptions) Run(ctx context.Context) error {
	opts := stdio.Options{Token: o.Token, Header: http.Header{}}
	if o.Tenant != "" {
		opts.Header.Set("X-Stoa-Tenant", o.Tenant)
	}
	errOut := o.F.IO.ErrOut
	if o.Verbose {
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(errOut, "stoa mcp: "+format+"\n", args...) }
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--url %q: want an http(s) URL such as https://gw.example.com/mcp", o.URL)
		}
		if u.Scheme == "http" && o.Token != "" && !isLoopback(u.Hostname()) {
			fmt.Fprintf(errOut, "stoa mcp: warning: sending a credential over plain http to %s\n", u.Host)
		}
		opts.Endpoint = o.URL
	} else {
		if err := client.CheckSocket(o.Socket, "--mcp-socket", "--mcp-socket or STOA_MCP_SOCKET"); err != nil {
			// Keep running: the client shows the errors, and stoad may
			// start later. Say what is wrong with the path now.
			fmt.Fprintf(errOut, "stoa mcp: %v\n", err)
			var h hinter
			if errors.As(err, &h) {
				fmt.Fprintf(errOut, "stoa mcp: hint: %s\n", h.Hint())
			}
		}
		opts.Endpoint = "http://stoad/mcp"
		opts.Client = stdio.UnixClient(o.Socket)
	}
	if err := stdio.Run(ctx, o.F.IO.In, o.F.IO.Out, opts); err != nil && ctx.Err() == nil {
		return fmt.Errorf("mcp bridge: %w", err)
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
