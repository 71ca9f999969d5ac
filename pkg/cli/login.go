package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stoa-gateway/stoa/pkg/cliconfig"
	"github.com/stoa-gateway/stoa/pkg/login"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// LoginOptions are the inputs of `stoa login`.
type LoginOptions struct {
	F                 *Factory
	Device            bool
	ClientCredentials bool
	ClientSecretFile  string
}

func newLoginCmd(f *Factory) *cobra.Command {
	o := &LoginOptions{F: f}
	cmd := noOutput(&cobra.Command{
		Use:   "login [--device | --client-credentials]",
		Short: "Log in to the current context's control plane",
		Long: `Login gets a token from the context's OpenID Connect issuer and stores it:
in the OS keyring, or, where there is none (headless Linux, CI), in
$XDG_CONFIG_HOME/stoa/tokens/<context>.json with mode 0600. Commands renew it
before it expires without asking; when that is no longer possible they say to
log in again.

  (default)             in a browser: authorization code with PKCE; the URL is
                        printed when no browser opens
  --device              on a machine without a browser: open the printed URL on
                        any device and enter the code
  --client-credentials  for CI: the context's client id (--client-id of
                        stoa context add) and its secret from $STOA_CLIENT_SECRET,
                        --client-secret-file or a prompt; the secret is not
                        stored, so commands renew the token only while
                        $STOA_CLIENT_SECRET is set

The context is the current one, or --context NAME.`,
		Example: `  stoa login
  stoa login --context prod --device
  STOA_CLIENT_SECRET=… stoa login --context ci --client-credentials`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.Run(cmd.Context()) },
	})
	cmd.Flags().BoolVar(&o.Device, "device", false, "log in on another device (device authorization grant)")
	cmd.Flags().BoolVar(&o.ClientCredentials, "client-credentials", false, "log in as a confidential client (CI), with $STOA_CLIENT_SECRET")
	cmd.Flags().StringVar(&o.ClientSecretFile, "client-secret-file", "", "read the client secret from this file (with --client-credentials)")
	cmd.MarkFlagsMutuallyExclusive("device", "client-credentials")
	return cmd
}

// Run logs in and stores the token.
func (o *LoginOptions) Run(ctx context.Context) error {
	if o.ClientSecretFile != "" && !o.ClientCredentials {
		return errors.New("--client-secret-file goes with --client-credentials")
	}
	t, err := o.F.resolveTarget()
	if err != nil {
		return err
	}
	x := t.ctx
	if !t.remote() {
		return errLocalContext(x.Name)
	}
	if x.Issuer == "" {
		return &hintError{err: fmt.Errorf("context %q has no issuer to log in with", x.Name),
			hint: fmt.Sprintf("set it: stoa context add %s --server %s --issuer URL --overwrite (or give commands a token in STOA_TOKEN)", x.Name, x.Server)}
	}
	errOut := o.F.IO.ErrOut
	cfg := login.Config{Issuer: x.Issuer, ClientID: x.ClientID, Audience: x.Audience, Scopes: x.Scopes,
		Stderr: errOut, OpenBrowser: o.F.OpenBrowser, Now: o.F.Now}
	if cfg.OpenBrowser == nil {
		cfg.OpenBrowser = login.SystemBrowser
	}
	if cfg.HTTPClient, err = issuerClient(x); err != nil {
		return err
	}
	if o.ClientCredentials {
		if cfg.ClientSecret, err = o.clientSecret(); err != nil {
			return err
		}
	}
	l, err := login.New(ctx, cfg)
	if err != nil {
		return loginError(x, err)
	}
	var tok *login.Token
	switch {
	case o.Device:
		tok, err = l.Device(ctx)
	case o.ClientCredentials:
		tok, err = l.ClientCredentials(ctx)
	default:
		tok, err = l.Browser(ctx)
	}
	if err != nil {
		return loginError(x, err)
	}
	store, err := o.F.tokenStore()
	if err != nil {
		return err
	}
	res, err := store.Save(x.Name, tok)
	if err != nil {
		return err
	}
	fmt.Fprintln(errOut, res.String())
	who := ""
	if sub := tokenSubject(tok.AccessToken); sub != "" {
		who = " as " + sub
	}
	fmt.Fprintf(errOut, "logged in to context %q (%s)%s", x.Name, x.Server, who)
	if !tok.Expiry.IsZero() {
		fmt.Fprintf(errOut, "; the token expires %s", tok.Expiry.Local().Format(time.DateTime))
		switch {
		case tok.RefreshToken != "":
			fmt.Fprint(errOut, " and is renewed automatically")
		case o.ClientCredentials:
			fmt.Fprintf(errOut, " and is renewed while $%s is set", EnvClientSecret)
		}
	}
	fmt.Fprintln(errOut)
	if t.token != "" {
		fmt.Fprintf(errOut, "note: $%s is set: commands send it instead of this login until you unset it\n", cliconfig.EnvToken)
	}
	return nil
}

// clientSecret reads the confidential client's secret: $STOA_CLIENT_SECRET,
// the --client-secret-file, or a prompt on a terminal. It is never a flag
// value, which would land in the shell's history and the process list.
func (o *LoginOptions) clientSecret() (string, error) {
	if o.ClientSecretFile != "" {
		b, err := os.ReadFile(o.ClientSecretFile)
		if err != nil {
			return "", fmt.Errorf("read client secret: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("read client secret: %s is empty", o.ClientSecretFile)
		}
		return s, nil
	}
	if s := o.F.getenv(EnvClientSecret); s != "" {
		return s, nil
	}
	io := o.F.IO
	if !io.InTTY {
		return "", &hintError{err: errors.New("--client-credentials needs the client secret"),
			hint: fmt.Sprintf("set %s or pass --client-secret-file PATH", EnvClientSecret)}
	}
	fmt.Fprint(io.ErrOut, "client secret: ")
	var (
		b   []byte
		err error
	)
	if f, ok := io.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err = term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(io.ErrOut)
	} else {
		var line string
		line, err = bufio.NewReader(io.In).ReadString('\n')
		b = []byte(line)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		if err == nil {
			err = errors.New("empty")
		}
		return "", fmt.Errorf("read client secret: %w", err)
	}
	return s, nil
}

// loginError gives a failed login its exit code: 4 when the issuer or the
// user refused, 5 when the issuer could not be reached.
func loginError(x cliconfig.Context, err error) error {
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, login.ErrLoginDenied):
		return &ExitError{Code: ExitForbidden, Err: err}
	case strings.Contains(err.Error(), "the issuer refused"):
		clientID := x.ClientID
		if clientID == "" {
			clientID = login.DefaultClientID
		}
		return &ExitError{Code: ExitForbidden, Err: &hintError{err: err,
			hint: fmt.Sprintf("check the context's client id (%s) and the client's secret", clientID)}}
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		pinned := x
		pinned.IssuerFingerprint = tlspin.Of(cve.UnverifiedCertificates[0].Raw).String()
		return &ExitError{Code: ExitUnreachable, Err: &hintError{err: err, hint: fmt.Sprintf(
			"the issuer presented %s. For an issuer with a self-signed certificate, confirm that fingerprint on the server (%s) and pin it: %s — never pin a fingerprint you have not checked",
			pinned.IssuerFingerprint, "openssl x509 -noout -fingerprint -sha256 -in <the issuer's certificate>", contextAddCommand(pinned))}}
	}
	if errors.Is(err, tlspin.ErrMismatch) {
		return &ExitError{Code: ExitUnreachable, Err: &hintError{err: err,
			hint: "nothing was sent. If the issuer's certificate was replaced on purpose, confirm the new fingerprint on the issuer and update --issuer-fingerprint (stoa context add … --overwrite)"}}
	}
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return &ExitError{Code: ExitUnreachable, Err: &hintError{err: err,
			hint: fmt.Sprintf("is the issuer %s right and reachable? check it with: stoa context list -o wide", x.Issuer)}}
	}
	return err
}

// tokenSubject reads the sub claim of a JWT access token, for the
// "logged in as" line only: nothing is decided on it (the control plane
// verifies the token).
func tokenSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Sub
}

// LogoutOptions are the inputs of `stoa logout`.
type LogoutOptions struct{ F *Factory }

func newLogoutCmd(f *Factory) *cobra.Command {
	o := &LogoutOptions{F: f}
	return noOutput(&cobra.Command{
		Use:   "logout",
		Short: "Remove the stored login of the current context",
		Long: `Logout removes the context's token from the OS keyring and the token file.
The issuer is not told: an access token already issued stays valid until it
expires (minutes).`,
		Example: "  stoa logout\n  stoa logout --context prod",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return o.Run() },
	})
}

// Run removes the token.
func (o *LogoutOptions) Run() error {
	t, err := o.F.resolveTarget()
	if err != nil {
		return err
	}
	if !t.remote() {
		return errLocalContext(t.ctx.Name)
	}
	store, err := o.F.tokenStore()
	if err != nil {
		return err
	}
	removed, err := store.Delete(t.ctx.Name)
	if err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	if len(removed) == 0 {
		fmt.Fprintf(o.F.IO.ErrOut, "not logged in to context %q: no token to remove\n", t.ctx.Name)
		return nil
	}
	fmt.Fprintf(o.F.IO.ErrOut, "logged out of context %q: removed its token from %s\n", t.ctx.Name, describeBackends(store, t.ctx.Name, removed))
	return nil
}
