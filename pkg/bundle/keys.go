package bundle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key files are cosign's: `cosign generate-key-pair` writes the same two
// PEM files, and either tool signs and verifies with the other's keys.
// The private key is PKCS #8, encrypted with scrypt + NaCl secretbox
// (go-securesystemslib's encrypted package, as cosign does) under a
// password; the public key is PKIX. Only ECDSA P-256 with SHA-256 is
// accepted, cosign's default, so a bundle's digest is the very hash its
// signature covers.
//
// This file uses the sigstore/sigstore and go-securesystemslib packages
// that cosign's pkg/cosign uses for its keys rather than pkg/cosign
// itself, which would link Rekor, TUF and OCI registry clients into the
// binaries (see docs/bundles.md for the sizes).
const (
	// PrivateKeyPEMType is the PEM type cosign v2 writes.
	PrivateKeyPEMType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	// legacyPrivateKeyPEMType is the type cosign v1 wrote; still read.
	legacyPrivateKeyPEMType = "ENCRYPTED COSIGN PRIVATE KEY"
)

// ErrPassword is a private key that does not decrypt with the password.
var ErrPassword = errors.New("wrong password")

// keyError is a key problem with a hint for the user.
type keyError struct {
	err  error
	hint string
}

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }
func (e *keyError) Hint() string  { return e.hint }

// GenerateKeyPair makes a new ECDSA P-256 key pair and returns the private
// key encrypted under password and the public key, both PEM, in the
// format of cosign.key and cosign.pub. An empty password is allowed (as
// in cosign) but leaves the private key unprotected.
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	if password == nil {
		password = []byte{}
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt private key: %w", err)
	}
	pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: PrivateKeyPEMType, Bytes: enc}), pubPEM, nil
}

// LoadSigner reads a cosign private key (PEM) encrypted under password.
func LoadSigner(privPEM, password []byte) (signature.SignerVerifier, error) {
	block, _ := pem.Decode(privPEM)
	if block == nil {
		return nil, &keyError{errors.New("load private key: no PEM block found"),
			"pass the private key that stoa bundle keygen or cosign generate-key-pair wrote (cosign.key)"}
	}
	switch block.Type {
	case PrivateKeyPEMType, legacyPrivateKeyPEMType:
	case string(cryptoutils.PublicKeyPEMType):
		return nil, &keyError{errors.New("load private key: this is a public key"),
			"sign with the private key (cosign.key); the public key (cosign.pub) is for verifying"}
	default:
		return nil, &keyError{fmt.Errorf("load private key: unsupported PEM type %q, want %q", block.Type, PrivateKeyPEMType),
			"generate a key pair with stoa bundle keygen or cosign generate-key-pair, or import one with cosign import-key-pair"}
	}
	if password == nil {
		password = []byte{}
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, &keyError{fmt.Errorf("decrypt private key: %w (or the key file is damaged)", ErrPassword),
			"set COSIGN_PASSWORD to the password the key was generated with"}
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, &keyError{fmt.Errorf("load private key: %s key: stoa bundles are signed with ECDSA P-256 keys", keyName(key)),
			"generate a P-256 key pair with stoa bundle keygen or cosign generate-key-pair"}
	}
	return signature.LoadECDSASignerVerifier(ec, crypto.SHA256)
}

// LoadSignerFile reads a cosign private key file.
func LoadSignerFile(path string, password []byte) (signature.SignerVerifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	return LoadSigner(b, password)
}

// LoadVerifier reads a cosign public key (PEM, PKIX).
func LoadVerifier(pubPEM []byte) (signature.Verifier, error) {
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		return nil, &keyError{errors.New("load public key: no PEM block found"),
			"pass the public key that stoa bundle keygen or cosign generate-key-pair wrote (cosign.pub)"}
	}
	if block.Type == PrivateKeyPEMType || block.Type == legacyPrivateKeyPEMType {
		return nil, &keyError{errors.New("load public key: this is a private key"),
			"verify with the public key (cosign.pub); the private key never leaves the signer"}
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, &keyError{fmt.Errorf("load public key: %s key: stoa bundles are signed with ECDSA P-256 keys", keyName(pub)),
			"use the public key of a P-256 key pair (stoa bundle keygen or cosign generate-key-pair)"}
	}
	return signature.LoadECDSAVerifier(ec, crypto.SHA256)
}

// LoadVerifierFile reads a cosign public key file.
func LoadVerifierFile(path string) (signature.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	return LoadVerifier(b)
}

// keyName names a key's algorithm for messages.
func keyName(k any) string {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PrivateKey, *rsa.PublicKey:
		return "RSA"
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}
