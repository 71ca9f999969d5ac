package client

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// AuthError means the control plane cannot be called with this context's
// identity: no usable token (never logged in, the session expired, the
// token stored for other settings) or the server refused the token it got
// (401: expired, another issuer or audience). The CLI exits 4 and says how
// to log in. A token without the needed role is an *api.Error with
// api.CodeForbidden (403), whose message names the role and object.
type AuthError struct {
	Server, Context string
	// Err is the server's answer (*api.Error) or why no token could be
	// had (the token source's error).
	Err error
	// FromEnv: the token was $STOA_TOKEN's. NoToken: none was sent (the
	// context has no issuer to log in with).
	FromEnv, NoToken bool
	// LoginCommand gets a new token ("stoa login --context prod").
	LoginCommand string
}

func (e *AuthError) Error() string {
	var ae *api.Error
	if !errors.As(e.Err, &ae) {
		return e.Err.Error()
	}
	switch {
	case e.FromEnv:
		return fmt.Sprintf("the control plane at %s refused the token in $STOA_TOKEN: %s", e.Server, ae.Message)
	case e.NoToken:
		return fmt.Sprintf("the control plane at %s requires a token, and context %q has none: %s", e.Server, e.Context, ae.Message)
	}
	return fmt.Sprintf("the control plane at %s refused the token of context %q: %s", e.Server, e.Context, ae.Message)
}

func (e *AuthError) Unwrap() error { return e.Err }

// Hint says how to get a token the server accepts.
func (e *AuthError) Hint() string {
	login := e.LoginCommand
	if login == "" {
		login = "stoa login"
	}
	var h string
	switch {
	case e.FromEnv:
		h = "put a fresh token for this server in STOA_TOKEN, or unset it to use the context's own login (" + login + ")"
	case e.NoToken:
		h = fmt.Sprintf("give context %q an issuer to log in with (stoa context add %s --server %s --issuer URL --overwrite), then: %s; or set STOA_TOKEN",
			e.Context, e.Context, e.Server, login)
	default:
		h = "log in again: " + login
	}
	var ae *api.Error
	if errors.As(e.Err, &ae) && ae.Hint != "" {
		h = ae.Hint + "; or " + h
	}
	return h
}

// RemoteUnreachableError means no answer came from the control plane:
// connection refused, a name that does not resolve, a timeout, a port
// that does not speak TLS; or, renewing an expired token, no answer from
// the issuer. The CLI exits 5.
type RemoteUnreachableError struct {
	Server, Context string
	Err             error
	// Issuer: the token's issuer was out of reach (renewal).
	Issuer bool
	// Timeout is set when no answer came within it.
	Timeout time.Duration
	// Unsure: a change (Method) was sent and may have been made.
	Unsure bool
	Method string
	// NotTLS: something answered, but not with TLS.
	NotTLS bool
	// LoginCommand is for the issuer case's hint.
	LoginCommand string
}

func (e *RemoteUnreachableError) Error() string {
	switch {
	case e.Issuer:
		return e.Err.Error()
	case e.Timeout > 0 && e.Unsure:
		return fmt.Sprintf("no answer from the control plane at %s within %s; the change may or may not have been made", e.Server, e.Timeout)
	case e.Timeout > 0:
		return fmt.Sprintf("no answer from the control plane at %s (context %q) within %s", e.Server, e.Context, e.Timeout)
	case e.NotTLS:
		return fmt.Sprintf("cannot talk TLS to the control plane at %s (context %q): %v", e.Server, e.Context, e.Err)
	case e.Unsure:
		return fmt.Sprintf("lost the connection to the control plane at %s during %s: %v; the change may or may not have been made", e.Server, e.Method, e.Err)
	}
	return fmt.Sprintf("cannot reach the control plane at %s (context %q): %v", e.Server, e.Context, e.Err)
}

func (e *RemoteUnreachableError) Unwrap() error { return e.Err }

// Hint says what to check.
func (e *RemoteUnreachableError) Hint() string {
	switch {
	case e.Issuer:
		login := e.LoginCommand
		if login == "" {
			login = "stoa login"
		}
		return "the token expired and its issuer cannot be reached to renew it: check the network path to the issuer, or log in again: " + login
	case e.Unsure:
		return fmt.Sprintf("check what is live before trying again: stoa history --context %s", e.Context)
	case e.NotTLS:
		return "the address does not serve HTTPS: check the scheme and port of the context's server (stoa context list)"
	}
	return fmt.Sprintf("is the control plane running and reachable from here? context %q's server is %s (see: stoa context list; switch with: stoa context use NAME)",
		e.Context, e.Server)
}

// CertificateError means the client refused the control plane's TLS
// certificate: it does not match the context's pinned fingerprint, or,
// without a pin, the system roots do not trust it. Nothing was sent. The
// CLI exits 5: the server cannot be reached safely, and trying again does
// not help until the trust is fixed.
type CertificateError struct {
	Server, Context string
	// Pinned: the context pins Want, and the server presented another.
	Pinned bool
	Want   tlspin.Fingerprint
	// Presented is the fingerprint of the certificate the server sent,
	// Subject its subject.
	Presented tlspin.Fingerprint
	Subject   string
	Err       error

	pinCommand func(string) string
}

func (e *CertificateError) Error() string {
	if e.Pinned {
		return fmt.Sprintf("refused the control plane's certificate at %s (context %q): it does not match the pinned fingerprint\n  expected %s\n  got      %s",
			e.Server, e.Context, e.Want, e.Presented)
	}
	msg := fmt.Sprintf("refused the control plane's certificate at %s (context %q): %v", e.Server, e.Context, e.Err)
	if e.Presented != (tlspin.Fingerprint{}) {
		msg += fmt.Sprintf("\n  the server presented %s", e.Presented)
		if e.Subject != "" {
			msg += " (" + e.Subject + ")"
		}
	}
	return msg
}

func (e *CertificateError) Unwrap() error { return e.Err }

// PinCommand is the command that pins the presented certificate to the
// context.
func (e *CertificateError) PinCommand() string {
	fp := e.Presented.String()
	if e.pinCommand != nil {
		return e.pinCommand(fp)
	}
	return fmt.Sprintf("stoa context add %s --server %s --fingerprint %s --overwrite", e.Context, e.Server, fp)
}

const checkFingerprint = "openssl x509 -noout -fingerprint -sha256 -in <the server's certificate>"

// Hint says how to fix the trust, never by trusting blindly.
func (e *CertificateError) Hint() string {
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case e.Pinned:
		return fmt.Sprintf("nothing was sent. If the server's certificate was replaced on purpose, confirm the new fingerprint on the server (%s) and pin it: %s — otherwise the connection may be intercepted",
			checkFingerprint, e.PinCommand())
	case errors.As(e.Err, &hostErr):
		return "the certificate does not name this host: use a name it covers in the context's server URL, or, after checking its fingerprint on the server (" +
			checkFingerprint + "), pin it: " + e.PinCommand()
	case errors.As(e.Err, &invalid) && invalid.Reason == x509.Expired:
		return "the server's certificate has expired (or this machine's clock is wrong): renew the certificate"
	case e.Presented == (tlspin.Fingerprint{}):
		return "check the server's TLS set-up"
	}
	return fmt.Sprintf("this machine does not trust the certificate's issuer. For a control plane with a self-signed certificate, confirm the fingerprint above on the server (%s) and pin it: %s — never pin a fingerprint you have not checked",
		checkFingerprint, e.PinCommand())
}

// hintedError is an error with a fix.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }
func (e *hintedError) Hint() string  { return e.hint }
