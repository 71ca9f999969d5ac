// Package login is the CLI side of logging in to a stoa control plane
// through its OpenID Connect issuer, and of keeping the tokens.
//
// Three flows get a token (each discovers the issuer's endpoints first):
//
//   - Browser: authorization code with PKCE (S256), the redirect landing on
//     a one-shot server on a free 127.0.0.1 port (int128/oauth2cli), the
//     browser opened through Config.OpenBrowser or, when none opens, the
//     URL printed to Config.Stderr;
//   - Device: the device authorization grant (RFC 8628) for machines
//     without a browser: the verification URI and user code are printed,
//     and the CLI polls until the user approves elsewhere;
//   - ClientCredentials: a confidential client's id and secret, for CI.
//
// A Store keeps tokens per context in the OS keyring (zalando/go-keyring)
// and falls back to a 0600 file under $XDG_CONFIG_HOME/stoa/tokens/ when
// there is no keyring service (headless Linux, CI) or the keyring refuses;
// Save reports which was used so the CLI can say so on stderr. A
// TokenSource hands out the stored access token and refreshes it shortly
// before it expires, re-saving the rotated tokens, without asking the user;
// when that is no longer possible it fails with ErrSessionExpired, and
// without any token with ErrNotLoggedIn, both telling the user to run
// `stoa login`.
//
// The package never links the daemon's data plane; certificate pinning for
// self-signed issuers and control planes is in package tlspin.
package login
