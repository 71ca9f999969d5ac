// Package devidp is a development OpenID Connect issuer, the identity
// counterpart of `vault server -dev`: an in-memory provider, built on
// zitadel/oidc's op package, that a developer or a test can start in one
// call and log in to with the stoa CLI.
//
// It supports what a control plane's users need, and nothing a production
// IdP must add (persistence, MFA, consent, user management):
//
//   - authorization code with PKCE (S256 only, required for public
//     clients), redirecting to a loopback port of the native app's choosing
//     (RFC 8252 §7.3: any port on 127.0.0.1, [::1] or localhost);
//   - the device authorization grant (RFC 8628);
//   - client credentials for confidential clients (CI);
//   - refresh tokens, rotated on every use, with reuse detection: a
//     refresh token presented a second time revokes its whole family;
//   - access tokens as JWTs (RS256) carrying the configured audience and a
//     "groups" claim, so resource servers verify them offline from the
//     JWKS; signing keys rotate with Rotate, and retired keys stay in the
//     JWKS for KeyRetention so tokens already issued keep verifying.
//
// The login and device pages are plain HTML forms, labelled on every page
// "DEVELOPMENT ISSUER — not for production", that an HTTP client can
// complete by following links and posting the form. Users log in with the
// username and password from Config, or are approved without a form when
// Config.AutoApprove names a user.
//
// Safety rails, since a dev issuer mints real tokens: the issuer must be a
// loopback address unless Config.UnsafeAllowNonLoopback is set; Listen
// refuses other addresses likewise; requests whose Host is not the
// issuer's are refused (DNS rebinding); CORS is restricted to the issuer's
// own origin, and the forms require a same-origin post with a CSRF token, so
// a web page in the developer's browser cannot drive the flows. Plain
// http:// issuers are accepted only on loopback (zitadel's
// op.WithAllowInsecure, which the OIDC specification does not allow for
// real providers); serve https with a pinned self-signed certificate (see
// package tlspin) anywhere else.
package devidp
