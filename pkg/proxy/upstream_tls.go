package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/stoa-gateway/stoa/pkg/secret"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// toolTLS is a Tool's upstreamTLS, compiled: the TLS configuration of its
// https pools and a key that keeps pools with other settings apart.
type toolTLS struct {
	config *tls.Config // nil: the registry's (Options.UpstreamTLS, else the system's roots)
	key    string      // "" without upstreamTLS
}

// UpstreamTLSConfig is the TLS configuration the proxy uses for a Tool's
// https upstreams (base: Options.UpstreamTLS), for other clients of the
// same upstreams (snapshot replays); nil when t is nil.
func UpstreamTLSConfig(base *tls.Config, t *spec.UpstreamTLS) (*tls.Config, error) {
	tt, err := compileUpstreamTLS(base, t)
	return tt.config, err
}

// compileUpstreamTLS builds the TLS configuration of t on top of base
// (Options.UpstreamTLS). A CA replaces the roots: a private CA is trusted
// for that Tool alone. The CA's contents are part of the key, so a rotated
// CA file takes effect with the next revision, on fresh connections.
func compileUpstreamTLS(base *tls.Config, t *spec.UpstreamTLS) (toolTLS, error) {
	if t == nil {
		return toolTLS{}, nil
	}
	cfg := &tls.Config{}
	if base != nil {
		cfg = base.Clone()
	}
	var pem []byte
	switch {
	case t.CAFile != "":
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return toolTLS{}, fmt.Errorf("upstreamTLS: read caFile: %w", err)
		}
		pem = b
	case t.CA != nil:
		v, err := secret.Read(*t.CA)
		if err != nil {
			return toolTLS{}, fmt.Errorf("upstreamTLS: ca: %w", err)
		}
		pem = []byte(v)
	}
	if pem != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return toolTLS{}, fmt.Errorf("upstreamTLS: the CA holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	cfg.ServerName = t.ServerName
	cfg.InsecureSkipVerify = t.InsecureSkipVerify
	sum := sha256.Sum256(pem)
	key := fmt.Sprintf("ca=%s|sni=%s|insecure=%t", hex.EncodeToString(sum[:8]), t.ServerName, t.InsecureSkipVerify)
	return toolTLS{config: cfg, key: key}, nil
}
