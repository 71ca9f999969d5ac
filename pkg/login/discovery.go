package login

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Endpoints are the parts of an issuer's discovery document a login needs.
type Endpoints struct {
	Issuer                      string   `json:"issuer"`
	AuthorizationEndpoint       string   `json:"authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	JWKSURI                     string   `json:"jwks_uri"`
	CodeChallengeMethods        []string `json:"code_challenge_methods_supported"`
}

const maxDiscoveryBytes = 1 << 20

// Discover fetches issuer's OpenID Connect discovery document with client
// (http.DefaultClient when nil). The document must name the same issuer
// (OpenID Connect Discovery §4.3, so a compromised or misconfigured
// document cannot redirect tokens elsewhere) and its endpoints must be
// https (or http on loopback, for development issuers).
func Discover(ctx context.Context, client *http.Client, issuer string) (*Endpoints, error) {
	if err := checkURL(issuer); err != nil {
		return nil, fmt.Errorf("discover issuer %s: %w", issuer, err)
	}
	if client == nil {
		client = http.DefaultClient
	}
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("discover issuer %s: %w", issuer, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discover issuer %s: %w (is the issuer URL right and reachable? for a self-signed issuer set its fingerprint)", issuer, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes+1))
	if err != nil {
		return nil, fmt.Errorf("discover issuer %s: %w", issuer, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discover issuer %s: %s answered %s (is the issuer URL right?)", issuer, u, resp.Status)
	}
	if len(body) > maxDiscoveryBytes {
		return nil, fmt.Errorf("discover issuer %s: discovery document over %d bytes", issuer, maxDiscoveryBytes)
	}
	var ep Endpoints
	if err := json.Unmarshal(body, &ep); err != nil {
		return nil, fmt.Errorf("discover issuer %s: discovery document is not JSON: %w", issuer, err)
	}
	if ep.Issuer != issuer {
		return nil, fmt.Errorf("discover issuer %s: the document names issuer %q (configure the issuer exactly as it names itself)", issuer, ep.Issuer)
	}
	if ep.TokenEndpoint == "" {
		return nil, fmt.Errorf("discover issuer %s: no token_endpoint", issuer)
	}
	for name, v := range map[string]string{
		"token_endpoint": ep.TokenEndpoint, "authorization_endpoint": ep.AuthorizationEndpoint,
		"device_authorization_endpoint": ep.DeviceAuthorizationEndpoint,
	} {
		if v == "" {
			continue
		}
		if err := checkURL(v); err != nil {
			return nil, fmt.Errorf("discover issuer %s: %s: %w", issuer, name, err)
		}
	}
	return &ep, nil
}

// checkURL requires https, or http on a loopback host (development
// issuers): tokens and secrets travel to these URLs.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("url %q: %w", s, err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("url %q: want https:// (plain http only on loopback)", s)
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
