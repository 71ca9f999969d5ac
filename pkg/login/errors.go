package login

import "errors"

var (
	// ErrNotLoggedIn means no token is stored for the context.
	ErrNotLoggedIn = errors.New("not logged in")
	// ErrSessionExpired means the stored token expired and could not be
	// renewed (no refresh token, or the issuer refused it).
	ErrSessionExpired = errors.New("session expired")
	// ErrLoginDenied means the user denied the login in the browser.
	ErrLoginDenied = errors.New("login denied")
)

// hintLogin is appended to errors a new login fixes.
const hintLogin = "run `stoa login`"
