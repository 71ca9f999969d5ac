package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/client"
)

// Exit codes, documented in the README and used by every command.
const (
	ExitOK          = 0 // success
	ExitFailure     = 1 // any other error
	ExitChanges     = 2 // stoa diff found changes
	ExitInvalid     = 3 // specs invalid
	ExitForbidden   = 4 // not authorized
	ExitUnreachable = 5 // daemon or control plane unreachable, or its certificate refused
)

// ExitError carries an exit code through cobra. A nil Err means the
// command already printed what it had to say.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// silent returns an error that only sets the exit code.
func silent(code int) error { return &ExitError{Code: code} }

// hinter is an error that knows how the user can fix it.
type hinter interface{ Hint() string }

// exitCode maps an error to the documented exit code: the one table.
func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var fe *client.ForbiddenError
	var auth *client.AuthError
	if errors.As(err, &fe) || errors.As(err, &auth) {
		return ExitForbidden
	}
	// A refused certificate is 5 too: the server cannot be reached
	// safely, and nothing was sent to it.
	var ue *client.UnreachableError
	var rue *client.RemoteUnreachableError
	var ce *client.CertificateError
	if errors.As(err, &ue) || errors.As(err, &rue) || errors.As(err, &ce) {
		return ExitUnreachable
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case api.CodeInvalid:
			return ExitInvalid
		case api.CodeForbidden, api.CodeUnauthorized:
			return ExitForbidden
		case api.CodeUnavailable:
			return ExitUnreachable
		}
	}
	return ExitFailure
}

// printError writes err (and its hint) to w in the `stoa: message` form.
func printError(w io.Writer, err error) {
	var ee *ExitError
	if errors.As(err, &ee) && ee.Err == nil {
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	fmt.Fprintf(w, "stoa: %v\n", err)
	var h hinter
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(w, "hint: %s\n", h.Hint())
		return
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Hint != "" {
		fmt.Fprintf(w, "hint: %s\n", ae.Hint)
	}
}
