// Package devidptest runs a devidp issuer on an in-process TLS server and
// drives its pages the way a person in a browser would, for tests of
// login flows and of resource servers that accept its tokens.
package devidptest

import (
	"crypto/x509"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// Server is a devidp.Provider served over TLS on 127.0.0.1.
type Server struct {
	*devidp.Provider
	// URL is the issuer URL (https://127.0.0.1:port).
	URL string
	// TLS is the underlying test server.
	TLS *httptest.Server
	// Fingerprint pins the server's certificate.
	Fingerprint tlspin.Fingerprint
	// HTTPClient, when set, is the client Client returns: for an issuer
	// served elsewhere (Remote).
	HTTPClient *http.Client
}

// Remote describes an issuer that something else serves (stoad
// --dev-issuer) at url, reached with client, so a Browser can log in to
// it. Provider and TLS are nil.
func Remote(url string, client *http.Client) *Server {
	return &Server{URL: url, HTTPClient: client}
}

// Start serves a provider for cfg (its Issuer is set to the server's URL)
// until the test ends.
func Start(t testing.TB, cfg devidp.Config) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("devidptest: listen: %v", err)
	}
	cfg.Issuer = "https://" + ln.Addr().String()
	p, err := devidp.New(cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("devidptest: %v", err)
	}
	srv := httptest.NewUnstartedServer(p.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &Server{Provider: p, URL: cfg.Issuer, TLS: srv, Fingerprint: tlspin.Of(srv.Certificate().Raw)}
}

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client {
	if s.HTTPClient != nil {
		return s.HTTPClient
	}
	return s.TLS.Client()
}

// CertPool returns a pool holding the server's certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.TLS.Certificate())
	return p
}

// Browser is a stand-in for a person's browser: it follows redirects,
// fills in the login or device form with its credentials and posts it
// with the Origin header a browser would send.
type Browser struct {
	Server   *Server
	Username string
	Password string
	// Visited records every URL the browser loaded, in order.
	Visited []string
}

// NewBrowser returns a browser that logs in as username.
func (s *Server) NewBrowser(username, password string) *Browser {
	return &Browser{Server: s, Username: username, Password: password}
}

func (b *Browser) client() *http.Client {
	c := *b.Server.Client()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 10 {
			return fmt.Errorf("browser: too many redirects")
		}
		b.Visited = append(b.Visited, req.URL.String())
		return nil
	}
	return &c
}

// Page is the last page a browser landed on.
type Page struct {
	URL    *url.URL
	Status int
	Body   string
}

func (b *Browser) do(req *http.Request) (*Page, error) {
	b.Visited = append(b.Visited, req.URL.String())
	resp, err := b.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &Page{URL: resp.Request.URL, Status: resp.StatusCode, Body: string(body)}, nil
}

// Get loads a URL.
func (b *Browser) Get(u string) (*Page, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return b.do(req)
}

// Post submits a form to u from the issuer's own page.
func (b *Browser) Post(u string, form url.Values) (*Page, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// An origin is scheme://host[:port], without the issuer's path.
	origin := b.Server.URL
	if u, err := url.Parse(origin); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	req.Header.Set("Origin", origin)
	return b.do(req)
}

var inputRE = regexp.MustCompile(`<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"`)

// FormValues returns the name/value pairs of the page's inputs that carry
// a value (hidden fields and prefilled ones).
func (p *Page) FormValues() url.Values {
	v := url.Values{}
	for _, m := range inputRE.FindAllStringSubmatch(p.Body, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// IsLoginForm reports whether the page is the issuer's login form.
func (p *Page) IsLoginForm() bool {
	return strings.Contains(p.Body, `action="`) && strings.Contains(p.Body, `name="id"`)
}

// Login opens u (typically the CLI's loopback URL or an authorization
// URL), signs in on the login form if one is shown, and returns the page
// it ends on (the CLI's "Authorized" page on success).
func (b *Browser) Login(u string) (*Page, error) {
	page, err := b.Get(u)
	if err != nil {
		return nil, fmt.Errorf("browser: open %s: %w", u, err)
	}
	if !page.IsLoginForm() {
		return page, nil
	}
	form := page.FormValues()
	form.Set(devidp.FieldUsername, b.Username)
	form.Set(devidp.FieldPassword, b.Password)
	page, err = b.Post(b.Server.URL+devidp.LoginPath, form)
	if err != nil {
		return nil, fmt.Errorf("browser: post login form: %w", err)
	}
	return page, nil
}

// Device opens a verification URI (complete or not), enters userCode when
// the page does not carry it, and approves (or denies) as the browser's
// user.
func (b *Browser) Device(verificationURI, userCode string, approve bool) (*Page, error) {
	page, err := b.Get(verificationURI)
	if err != nil {
		return nil, fmt.Errorf("browser: open %s: %w", verificationURI, err)
	}
	form := page.FormValues()
	if userCode != "" {
		form.Set(devidp.FieldUserCode, userCode)
	}
	form.Set(devidp.FieldUsername, b.Username)
	form.Set(devidp.FieldPassword, b.Password)
	form.Set(devidp.FieldAction, map[bool]string{true: "approve", false: "deny"}[approve])
	return b.Post(b.Server.URL+devidp.DevicePath, form)
}
