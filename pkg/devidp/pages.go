package devidp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// Form field names of the login and device pages, for clients that drive
// them without a browser.
const (
	FieldRequestID = "id"
	FieldUsername  = "username"
	FieldPassword  = "password"
	FieldUserCode  = "user_code"
	FieldCSRF      = "csrf"
	FieldAction    = "action" // "approve" or "deny" on the device page
)

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — stoa development issuer</title>
<style>
body{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em}
.dev{background:#b00020;color:#fff;font-weight:bold;padding:.6em 1em;border-radius:.3em;text-align:center}
.err{color:#b00020}label{display:block;margin:.8em 0 .2em}input{width:100%;padding:.3em}
button{margin-top:1em;padding:.4em 1.2em}code{background:#eee;padding:0 .3em}
</style></head><body>
<p class="dev" id="dev-label">{{.Label}}</p>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{end}}
{{define "login"}}{{template "head" .}}
<p>Client <code>{{.ClientID}}</code> asks to sign you in{{if .Scopes}} with scopes <code>{{.Scopes}}</code>{{end}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.RequestID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="username">Username</label><input id="username" name="username" value="{{.Username}}" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit">Sign in</button>
</form></body></html>{{end}}
{{define "device"}}{{template "head" .}}
<p>Enter the code your terminal shows{{if .ClientID}} (client <code>{{.ClientID}}</code>{{if .Scopes}}, scopes <code>{{.Scopes}}</code>{{end}}){{end}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="user_code">Code</label><input id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off" required>
<label for="username">Username</label><input id="username" name="username" value="{{.Username}}" autocomplete="username">
<label for="password">Password{{if .AutoApprove}} (not needed for {{.AutoApprove}}){{end}}</label><input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button>
</form></body></html>{{end}}
{{define "done"}}{{template "head" .}}
<p id="result">{{.Message}}</p></body></html>{{end}}
`))

type pageData struct {
	Label, Title, Error, Message string
	Action, CSRF                 string
	RequestID, ClientID, Scopes  string
	Username, UserCode           string
	AutoApprove                  string
}

func (p *Provider) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.Label = Label
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, d)
}

// csrfToken binds a form to this provider and purpose: a page elsewhere
// cannot read it (same-origin policy, restricted CORS), so it cannot post
// the form on the user's behalf.
func (p *Provider) csrfToken(purpose string) string {
	m := hmac.New(sha256.New, p.csrfKey[:])
	m.Write([]byte(purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Provider) checkCSRF(r *http.Request, purpose string) bool {
	got := r.PostFormValue(FieldCSRF)
	return got != "" && hmac.Equal([]byte(got), []byte(p.csrfToken(purpose)))
}

// sameOrigin refuses posts that a browser marks as coming from another
// site. Clients that are not browsers send no Origin and pass (they
// cannot be driven by a web page).
func (p *Provider) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		return o == p.origin
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		return strings.HasPrefix(ref, p.origin+"/")
	}
	return true
}

// authenticate checks a username and password against the configured
// users. The auto-approve user needs no password.
func (p *Provider) authenticate(username, password string) (string, bool) {
	u := p.store.users[username]
	if u == nil {
		// Compare anyway so unknown users take as long as known ones.
		equalSecret(password, "\x00unknown")
		return "", false
	}
	if username == p.cfg.AutoApprove {
		return username, true
	}
	if u.Password == "" || !equalSecret(u.Password, password) {
		return "", false
	}
	return username, true
}

func (p *Provider) callbackURL(id string) string {
	return p.op.AuthorizationEndpoint().Absolute(p.cfg.Issuer) + "/callback?id=" + url.QueryEscape(id)
}

func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		p.postLogin(w, r)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.URL.Query().Get(FieldRequestID)
	a, err := p.store.AuthRequestByID(r.Context(), id)
	if err != nil {
		p.render(w, http.StatusBadRequest, "done", pageData{Title: "Sign in", Error: "This login request is unknown or expired. Start the login again from your terminal."})
		return
	}
	if p.cfg.AutoApprove != "" {
		if err := p.store.completeLogin(id, p.cfg.AutoApprove); err != nil {
			p.render(w, http.StatusBadRequest, "done", pageData{Title: "Sign in", Error: err.Error()})
			return
		}
		p.cfg.Logger.Info("dev issuer: login auto-approved", "user", p.cfg.AutoApprove, "client", a.GetClientID())
		http.Redirect(w, r, p.callbackURL(id), http.StatusFound)
		return
	}
	p.render(w, http.StatusOK, "login", pageData{
		Title: "Sign in", Action: p.cfg.Issuer + LoginPath, CSRF: p.csrfToken("login"),
		RequestID: id, ClientID: a.GetClientID(), Scopes: strings.Join(a.GetScopes(), " "),
	})
}

func (p *Provider) postLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if !p.sameOrigin(r) || !p.checkCSRF(r, "login") {
		p.render(w, http.StatusForbidden, "done", pageData{Title: "Sign in", Error: "This form was not posted from the issuer's own login page."})
		return
	}
	id := r.PostFormValue(FieldRequestID)
	a, err := p.store.AuthRequestByID(r.Context(), id)
	if err != nil {
		p.render(w, http.StatusBadRequest, "done", pageData{Title: "Sign in", Error: "This login request is unknown or expired. Start the login again from your terminal."})
		return
	}
	username := r.PostFormValue(FieldUsername)
	user, ok := p.authenticate(username, r.PostFormValue(FieldPassword))
	if !ok {
		p.cfg.Logger.Info("dev issuer: login refused", "user", username)
		p.render(w, http.StatusUnauthorized, "login", pageData{
			Title: "Sign in", Error: "Unknown user or wrong password.", Action: p.cfg.Issuer + LoginPath,
			CSRF: p.csrfToken("login"), RequestID: id, ClientID: a.GetClientID(),
			Scopes: strings.Join(a.GetScopes(), " "), Username: username,
		})
		return
	}
	if err := p.store.completeLogin(id, user); err != nil {
		p.render(w, http.StatusBadRequest, "done", pageData{Title: "Sign in", Error: err.Error()})
		return
	}
	p.cfg.Logger.Info("dev issuer: login", "user", user, "client", a.GetClientID())
	http.Redirect(w, r, p.callbackURL(id), http.StatusFound)
}

func (p *Provider) serveDevice(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		p.postDevice(w, r)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	code := r.URL.Query().Get(FieldUserCode)
	d := pageData{Title: "Device login", Action: p.cfg.Issuer + DevicePath, CSRF: p.csrfToken("device"),
		UserCode: code, Username: p.cfg.AutoApprove, AutoApprove: p.cfg.AutoApprove}
	if code != "" {
		if e, err := p.store.deviceByUserCode(code); err != nil {
			d.Error = err.Error()
		} else {
			d.ClientID, d.Scopes, d.UserCode = e.state.ClientID, strings.Join(e.state.Scopes, " "), e.userCode
		}
	}
	p.render(w, http.StatusOK, "device", d)
}

func (p *Provider) postDevice(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if !p.sameOrigin(r) || !p.checkCSRF(r, "device") {
		p.render(w, http.StatusForbidden, "done", pageData{Title: "Device login", Error: "This form was not posted from the issuer's own device page."})
		return
	}
	code := r.PostFormValue(FieldUserCode)
	username := r.PostFormValue(FieldUsername)
	again := func(status int, msg string) {
		p.render(w, status, "device", pageData{Title: "Device login", Error: msg, Action: p.cfg.Issuer + DevicePath,
			CSRF: p.csrfToken("device"), UserCode: code, Username: username, AutoApprove: p.cfg.AutoApprove})
	}
	if _, err := p.store.deviceByUserCode(code); err != nil {
		again(http.StatusBadRequest, err.Error())
		return
	}
	switch r.PostFormValue(FieldAction) {
	case "deny":
		if err := p.store.decideDevice(code, "", false); err != nil {
			again(http.StatusBadRequest, err.Error())
			return
		}
		p.render(w, http.StatusOK, "done", pageData{Title: "Device login", Message: "Denied. The terminal's login fails; you can close this page."})
	case "approve":
		user, ok := p.authenticate(username, r.PostFormValue(FieldPassword))
		if !ok {
			p.cfg.Logger.Info("dev issuer: device login refused", "user", username)
			again(http.StatusUnauthorized, "Unknown user or wrong password.")
			return
		}
		if err := p.store.decideDevice(code, user, true); err != nil {
			again(http.StatusBadRequest, err.Error())
			return
		}
		p.cfg.Logger.Info("dev issuer: device approved", "user", user)
		p.render(w, http.StatusOK, "done", pageData{Title: "Device login", Message: "Approved. Return to your terminal; you can close this page."})
	default:
		again(http.StatusBadRequest, "Choose Approve or Deny.")
	}
}
