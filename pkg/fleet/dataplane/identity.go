package dataplane

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet/ca"
)

// identityFile holds the data plane's key, certificate and the fleet CA,
// in one file so that a renewal replaces key and certificate together
// (written atomically, 0600). A file with a key and no certificate is a
// join in progress: the retry sends the same key, which the control plane
// recognises.
const identityFile = "identity.json"

type identityJSON struct {
	ControlPlane string `json:"controlPlane"`
	Name         string `json:"name,omitempty"`
	Key          string `json:"key"`
	Certificate  string `json:"certificate,omitempty"`
	CA           string `json:"ca,omitempty"`
	// TokenHash is the SHA-256 of the join token used, so that a new
	// token given later is recognised as one to rejoin with.
	TokenHash string `json:"tokenHash,omitempty"`
	// HeartbeatInterval as the control plane set it.
	HeartbeatInterval string `json:"heartbeatInterval,omitempty"`
}

// identity is the data plane's loaded identity.
type identity struct {
	controlPlane string
	name         string
	key          *ecdsa.PrivateKey
	cert         *tls.Certificate // nil while joining
	caPEM        []byte
	tokenHash    string
	interval     time.Duration
}

func (id *identity) leaf() *x509.Certificate {
	if id == nil || id.cert == nil {
		return nil
	}
	return id.cert.Leaf
}

func tokenHash(tok string) string {
	if tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func loadIdentity(dir string) (*identity, error) {
	path := filepath.Join(dir, identityFile)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load data plane identity: %s is readable by others (mode %v); chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load data plane identity: %w", err)
	}
	var j identityJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("load data plane identity %s: %w", path, err)
	}
	kb, _ := pem.Decode([]byte(j.Key))
	if kb == nil {
		return nil, fmt.Errorf("load data plane identity %s: no key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load data plane identity %s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load data plane identity %s: a %T key, want ECDSA", path, k)
	}
	id := &identity{controlPlane: j.ControlPlane, name: j.Name, key: key, caPEM: []byte(j.CA), tokenHash: j.TokenHash}
	if id.interval, err = parseInterval(j.HeartbeatInterval); err != nil {
		return nil, fmt.Errorf("load data plane identity %s: %w", path, err)
	}
	if j.Certificate != "" {
		if id.cert, err = certFor(key, []byte(j.Certificate)); err != nil {
			return nil, fmt.Errorf("load data plane identity %s: %w", path, err)
		}
	}
	return id, nil
}

// certFor pairs a PEM certificate with its key, checking they match and
// that the certificate names a data plane.
func certFor(key *ecdsa.PrivateKey, certPEM []byte) (*tls.Certificate, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("the certificate is not PEM")
	}
	leaf, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the certificate is not for the data plane's key")
	}
	if _, err := ca.NameOf(leaf); err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{cb.Bytes}, PrivateKey: key, Leaf: leaf}, nil
}

func saveIdentity(dir string, id *identity) error {
	der, err := x509.MarshalPKCS8PrivateKey(id.key)
	if err != nil {
		return err
	}
	j := identityJSON{ControlPlane: id.controlPlane, Name: id.name, CA: string(id.caPEM), TokenHash: id.tokenHash,
		Key: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}
	if id.interval > 0 {
		j.HeartbeatInterval = id.interval.String()
	}
	if id.cert != nil {
		j.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.cert.Certificate[0]}))
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := ca.WriteFile(filepath.Join(dir, identityFile), b, 0o600); err != nil {
		return fmt.Errorf("save data plane identity: %w", err)
	}
	return nil
}

// parseInterval reads the heartbeat interval the control plane gave: empty
// means the data plane's default, anything else must be a positive
// duration.
func parseInterval(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("heartbeat interval %q: want a positive duration such as 30s", s)
	}
	return d, nil
}
