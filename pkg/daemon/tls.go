package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/stoa-gateway/stoa/pkg/tlspin"
)

// selfSignedValidity is how long a self-signed API certificate is valid.
// Clients pin it by fingerprint, which checks neither names nor expiry;
// it is made once and kept in the state directory, so pins survive
// restarts.
const selfSignedValidity = 10 * 365 * 24 * time.Hour

// apiCertificate loads --tls-cert/--tls-key, or the self-signed
// certificate kept in the state directory (made on first start).
func apiCertificate(cfg *Config, log *slog.Logger) (tls.Certificate, tlspin.Fingerprint, bool, error) {
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return cert, tlspin.Fingerprint{}, false, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		return cert, tlspin.Of(cert.Certificate[0]), false, nil
	}
	dir := filepath.Join(cfg.StateDir, "api-tls")
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert, err := tls.LoadX509KeyPair(crt, key)
	switch {
	case err == nil:
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return cert, tlspin.Fingerprint{}, false, fmt.Errorf("self-signed API certificate %s: %w", crt, err)
		}
		return cert, tlspin.Of(cert.Certificate[0]), true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return cert, tlspin.Fingerprint{}, false, fmt.Errorf("self-signed API certificate in %s: %w (delete both files to make a new one; clients must pin it again)", dir, err)
	}
	if _, kerr := os.Stat(key); kerr == nil {
		return cert, tlspin.Fingerprint{}, false, fmt.Errorf("self-signed API certificate: %s exists without %s (delete it to make a new pair)", key, crt)
	}
	cert, fp, err := tlspin.SelfSigned(certHosts(cfg.APIListen), time.Now(), selfSignedValidity)
	if err != nil {
		return cert, fp, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return cert, fp, false, fmt.Errorf("make self-signed API certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cert, fp, false, fmt.Errorf("make self-signed API certificate: %w", err)
	}
	// The key first: a crash between the two leaves a key without a
	// certificate, which the next start reports instead of trusting.
	if err := writeFileAtomic(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return cert, fp, false, err
	}
	if err := writeFileAtomic(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})); err != nil {
		return cert, fp, false, err
	}
	log.Info("made a self-signed certificate for the API listener", "dir", dir, "fingerprint", fp.String())
	return cert, fp, true, nil
}

// certHosts are the names a self-signed certificate carries: the listen
// host, and loopback (clients pin the fingerprint, so names are only
// informative).
func certHosts(listen string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil {
			return append([]string{h}, hosts...)
		}
		return hosts
	}
	for _, h := range hosts {
		if h == host {
			return hosts
		}
	}
	return append([]string{host}, hosts...)
}

// writeFileAtomic writes a private file (0600) by renaming a synced
// temporary file over it.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
