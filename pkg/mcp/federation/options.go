package federation

import (
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"github.com/stoa-gateway/stoa/pkg/secret"
	"github.com/stoa-gateway/stoa/pkg/spec"
)

// Options are shared by the upstreams of a daemon.
type Options struct {
	// Logger receives session events and stdio children's stderr lines,
	// with tenant, tool and transport attributes. Nil discards.
	Logger *slog.Logger
	// ClientName and ClientVersion are sent as clientInfo; default "stoa".
	ClientName    string
	ClientVersion string
	// TLSClientConfig for https upstreams (custom roots, client
	// certificates); nil uses the system roots.
	TLSClientConfig *tls.Config
	// DialControl, when set, vets every resolved address before an HTTP
	// upstream connection is made (net.Dialer.Control), e.g. the webhook
	// package's SSRF guard for Gateways that refuse private destinations.
	DialControl func(network, address string, c syscall.RawConn) error
	// ReadSecret resolves secretRefs; default pkg/secret.Read.
	ReadSecret func(spec.SecretRef) (string, error)
	// Backoff between reconnects (HTTP) and restarts (stdio): it starts at
	// BackoffInitial (250 ms), doubles up to BackoffMax (30 s), and each wait
	// is jittered by ±25 %. It resets once a session stayed up for
	// StableAfter (30 s).
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	StableAfter    time.Duration
	// FailureThreshold consecutive timed-out calls mark a connected upstream
	// down (circuit open) until a new session succeeds; default 3. A refused
	// or broken connection and a process exit mark it down at once.
	FailureThreshold int
	// MaxMessageBytes bounds one message from an upstream; default 16 MiB.
	MaxMessageBytes int
	// MaxTools bounds the tools (and resources) taken from one upstream;
	// default 10000. Further entries are ignored, with a problem reported.
	MaxTools int
}

func (o *Options) clientInfo() []byte {
	name, version := o.ClientName, o.ClientVersion
	if name == "" {
		name = "stoa"
	}
	if version == "" {
		version = "dev"
	}
	b, _ := json.Marshal(map[string]string{"name": name, "version": version})
	return b
}

func (o *Options) readSecret(ref spec.SecretRef) (string, error) {
	if o.ReadSecret != nil {
		return o.ReadSecret(ref)
	}
	return secret.Read(ref)
}

// resolveAuth returns the header and value of a credential.
func (o *Options) resolveAuth(a *Auth) (string, string, error) {
	v, err := o.readSecret(a.SecretRef)
	if err != nil {
		return "", "", err
	}
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", "", errSecretControl
	}
	header, prefix := a.Header, a.Prefix
	if header == "" {
		header = "Authorization"
	}
	if prefix == "" && strings.EqualFold(header, "Authorization") {
		prefix = "Bearer "
	}
	return header, prefix + v, nil
}

func (o *Options) resolveEnv(e *EnvVar) (string, error) {
	v, err := o.readSecret(*e.SecretRef)
	if err != nil {
		return "", err
	}
	if strings.ContainsRune(v, 0) {
		return "", errSecretControl
	}
	return v, nil
}

func (o *Options) maxMessage() int {
	if o.MaxMessageBytes > 0 {
		return o.MaxMessageBytes
	}
	return 16 << 20
}

func (o *Options) maxTools() int {
	if o.MaxTools > 0 {
		return o.MaxTools
	}
	return 10000
}

func (o *Options) failureThreshold() int {
	if o.FailureThreshold > 0 {
		return o.FailureThreshold
	}
	return 3
}

func (o *Options) backoff() (initial, maxWait, stable time.Duration) {
	initial, maxWait, stable = o.BackoffInitial, o.BackoffMax, o.StableAfter
	if initial <= 0 {
		initial = 250 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	if stable <= 0 {
		stable = 30 * time.Second
	}
	return initial, max(maxWait, initial), stable
}
