package devidp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Label is shown on every page the issuer renders.
const Label = "DEVELOPMENT ISSUER — not for production"

// DefaultClientID is the public client the stoa CLI logs in with.
const DefaultClientID = "stoa-cli"

// Config configures a Provider. Zero durations take the defaults named on
// each field.
type Config struct {
	// Issuer is the exact issuer URL ("https://127.0.0.1:8443"); it must be
	// where the handler is served. http:// is accepted only for loopback
	// hosts.
	Issuer string
	// Audience is put in the aud claim of every access token (the control
	// plane's resource identifier). Required.
	Audience string
	// Users who may log in. Required (at least one).
	Users []User
	// Clients that may ask for tokens. Default: the public client
	// DefaultClientID with loopback redirects.
	Clients []Client
	// AutoApprove names a user who is logged in without a form: the
	// authorization endpoint's login step completes at once and the device
	// page approves without a password. For local development only.
	AutoApprove string
	// AccessTokenTTL is the lifetime of access tokens. Default 15m.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL bounds a refresh-token family from the login that
	// started it (rotation does not extend it). Default 24h.
	RefreshTokenTTL time.Duration
	// IDTokenTTL is the lifetime of ID tokens. Default 1h.
	IDTokenTTL time.Duration
	// KeyRetention is how long a key retired by Rotate stays in the JWKS.
	// Default: AccessTokenTTL plus 5 minutes, so every token it signed
	// expires before it disappears.
	KeyRetention time.Duration
	// DeviceCodeTTL is how long a device code may be approved. Default 10m.
	DeviceCodeTTL time.Duration
	// DevicePollInterval is the interval device clients are told to poll
	// at, rounded down to whole seconds (minimum 1s). Default 5s.
	DevicePollInterval time.Duration
	// UnsafeAllowNonLoopback allows an issuer (and Listen) on a non-loopback
	// address. The issuer has no real authentication story: never expose it
	// to a network you do not control.
	UnsafeAllowNonLoopback bool
	// Now is the clock for token expiry, key retention and request
	// lifetimes. Default time.Now.
	Now func() time.Time
	// Logger receives login events (never secrets). Default: discard.
	Logger *slog.Logger
}

// User is a person who can log in.
type User struct {
	// Username is the login name and the token subject.
	Username string
	// Password for the login form; empty means the user can only be
	// logged in through AutoApprove.
	Password string
	// Groups go into the "groups" claim of the user's tokens.
	Groups []string
	// Email and Name go into the ID token with the email and profile
	// scopes.
	Email string
	Name  string
}

// Client is an OAuth client.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret makes the client confidential (client_secret_basic or
	// client_secret_post) and enables the client credentials grant; empty
	// makes it a public native client that must use PKCE.
	Secret string
	// RedirectURIs a confidential client may use with the authorization
	// code grant. Public clients accept any loopback redirect on any port
	// whose path is one of these paths; their default is
	// http://127.0.0.1/callback (so http://127.0.0.1:<any>/callback,
	// http://localhost:<any>/callback and http://[::1]:<any>/callback).
	RedirectURIs []string
	// Groups go into the "groups" claim of client credentials tokens (the
	// CI identity's groups).
	Groups []string
}

func (c *Client) public() bool { return c.Secret == "" }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._:-]{0,127}$`)

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	u, err := url.Parse(c.Issuer)
	switch {
	case err != nil || c.Issuer == "":
		return c, fmt.Errorf("configure dev issuer: issuer %q is not a URL (want e.g. https://127.0.0.1:8443)", c.Issuer)
	case u.Scheme != "https" && u.Scheme != "http":
		return c, fmt.Errorf("configure dev issuer: issuer %q: want an https:// URL", c.Issuer)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return c, fmt.Errorf("configure dev issuer: issuer %q: want scheme://host[:port][/path] without credentials, query or fragment", c.Issuer)
	case strings.HasSuffix(c.Issuer, "/"):
		return c, fmt.Errorf("configure dev issuer: issuer %q: drop the trailing slash (the iss claim must match exactly)", c.Issuer)
	}
	loop := isLoopbackHost(u.Hostname())
	if !loop && !c.UnsafeAllowNonLoopback {
		return c, fmt.Errorf("configure dev issuer: issuer host %q is not a loopback address (the development issuer serves 127.0.0.1, [::1] or localhost; set UnsafeAllowNonLoopback to override)", u.Hostname())
	}
	if u.Scheme == "http" && !loop {
		return c, fmt.Errorf("configure dev issuer: issuer %q: plain http is only allowed on loopback; serve https", c.Issuer)
	}
	if c.Audience == "" {
		return c, errors.New("configure dev issuer: no audience (set the control plane's resource identifier, e.g. https://127.0.0.1:7443)")
	}
	if len(c.Users) == 0 {
		return c, errors.New("configure dev issuer: no users (add at least one user with a username and password)")
	}
	seen := map[string]bool{}
	for i, usr := range c.Users {
		if !nameRE.MatchString(usr.Username) {
			return c, fmt.Errorf("configure dev issuer: user %d: username %q: want 1-128 of [A-Za-z0-9@._:-], starting with a letter or digit", i+1, usr.Username)
		}
		if seen[usr.Username] {
			return c, fmt.Errorf("configure dev issuer: user %q is listed twice", usr.Username)
		}
		seen[usr.Username] = true
	}
	if c.AutoApprove != "" && !seen[c.AutoApprove] {
		return c, fmt.Errorf("configure dev issuer: auto-approve user %q is not among the users", c.AutoApprove)
	}
	c.Users = slices.Clone(c.Users)
	if len(c.Clients) == 0 {
		c.Clients = []Client{{ID: DefaultClientID}}
	}
	c.Clients = slices.Clone(c.Clients)
	seen = map[string]bool{}
	for i := range c.Clients {
		cl := &c.Clients[i]
		if !nameRE.MatchString(cl.ID) {
			return c, fmt.Errorf("configure dev issuer: client %d: id %q: want 1-128 of [A-Za-z0-9@._:-]", i+1, cl.ID)
		}
		if seen[cl.ID] {
			return c, fmt.Errorf("configure dev issuer: client %q is listed twice", cl.ID)
		}
		seen[cl.ID] = true
		if cl.public() && len(cl.RedirectURIs) == 0 {
			cl.RedirectURIs = []string{"http://127.0.0.1/callback"}
		}
		for _, r := range cl.RedirectURIs {
			ru, err := url.Parse(r)
			if err != nil || (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" || ru.Fragment != "" {
				return c, fmt.Errorf("configure dev issuer: client %q: redirect uri %q: want an absolute http(s) URL without fragment", cl.ID, r)
			}
			if cl.public() && !isLoopbackHost(ru.Hostname()) {
				return c, fmt.Errorf("configure dev issuer: public client %q: redirect uri %q is not a loopback URL (native apps redirect to 127.0.0.1; give the client a secret for other redirects)", cl.ID, r)
			}
		}
		if cl.public() && len(cl.Groups) > 0 {
			return c, fmt.Errorf("configure dev issuer: public client %q has groups, but only confidential clients get client credentials tokens (set a secret)", cl.ID)
		}
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d < 0 {
			return fmt.Errorf("configure dev issuer: %s is negative", name)
		}
		if *d == 0 {
			*d = v
		}
		return nil
	}
	for _, x := range []struct {
		d    *time.Duration
		v    time.Duration
		name string
	}{
		{&c.AccessTokenTTL, 15 * time.Minute, "access token ttl"},
		{&c.RefreshTokenTTL, 24 * time.Hour, "refresh token ttl"},
		{&c.IDTokenTTL, time.Hour, "id token ttl"},
		{&c.DeviceCodeTTL, 10 * time.Minute, "device code ttl"},
		{&c.DevicePollInterval, 5 * time.Second, "device poll interval"},
	} {
		if err := def(x.d, x.v, x.name); err != nil {
			return c, err
		}
	}
	if err := def(&c.KeyRetention, c.AccessTokenTTL+5*time.Minute, "key retention"); err != nil {
		return c, err
	}
	c.DevicePollInterval = max(c.DevicePollInterval.Truncate(time.Second), time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// CheckListenAddr refuses a listen address that is not loopback (an empty
// or unspecified host listens on every interface) unless unsafe is set.
func CheckListenAddr(addr string, unsafe bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen %q: %w (want host:port, e.g. 127.0.0.1:5556)", addr, err)
	}
	if isLoopbackHost(host) || unsafe {
		return nil
	}
	if host == "" {
		host = "every interface"
	}
	return fmt.Errorf("listen %s: %s is not a loopback address (the development issuer listens on 127.0.0.1 or [::1] only; an explicit unsafe override allows others)", addr, host)
}

// Listen opens a TCP listener for the issuer after CheckListenAddr.
func Listen(addr string, unsafe bool) (net.Listener, error) {
	if err := CheckListenAddr(addr, unsafe); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}
