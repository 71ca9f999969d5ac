// Package fleet holds the wire types of fleet mode shared by the control
// plane (pkg/fleet/controlplane), the data plane (pkg/fleet/dataplane) and
// the CLI: the /v1/fleet/ routes, their request and response bodies, the
// data plane listing of `stoa get dataplanes`, join tokens and a data
// plane's sync status for `stoa status`.
//
// It links nothing but the standard library, so both binaries (and
// pkg/api) can import it.
package fleet

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// Routes a control plane serves to data planes, under its HTTPS server.
// Join needs a join token; the others a client certificate from join.
const (
	PathPrefix    = "/v1/fleet/"
	PathJoin      = "/v1/fleet/join"      // POST JoinRequest → JoinResponse
	PathRenew     = "/v1/fleet/renew"     // POST RenewRequest → RenewResponse (mTLS)
	PathWatch     = "/v1/fleet/watch"     // GET ?have=REV&digest=D&wait=30s (mTLS)
	PathHeartbeat = "/v1/fleet/heartbeat" // POST Heartbeat → HeartbeatResponse (mTLS)
)

// Query parameters of PathWatch.
const (
	// QueryHave and QueryDigest name the revision the data plane holds
	// (none: 0 and empty); the control plane answers with a delta from
	// it when it can.
	QueryHave   = "have"
	QueryDigest = "digest"
	// QueryWait is how long to hold the request when nothing is newer
	// (Go duration; default 30s, at most 5m); then 304.
	QueryWait = "wait"
	// QuerySkip names a digest the data plane refused: the control
	// plane waits for a newer revision instead of sending it again.
	QuerySkip = "skip"
	// QueryFull=1 asks for the full bundle, never a delta (after a delta
	// failed to apply).
	QueryFull = "full"
)

// Headers of a PathWatch answer.
const (
	HeaderRevision  = "Stoa-Bundle-Revision"
	HeaderDigest    = "Stoa-Bundle-Digest"    // the announced digest of the (rebuilt) bundle
	HeaderSignature = "Stoa-Bundle-Signature" // full bundles: the cosign signature (base64)
	HeaderKeyID     = "Stoa-Bundle-Key-Id"    // the key the control plane signs with
)

// Content types of a PathWatch answer.
const (
	ContentTypeBundle = "application/vnd.stoa.bundle+json"
	ContentTypeDelta  = "application/vnd.stoa.bundle-delta+json"
)

// Health values of a data plane.
const (
	// HealthOK: serving the revision it reports, no error.
	HealthOK = "ok"
	// HealthDegraded: serving, but the last revision failed to apply or
	// was refused, or the last good bundle could not be written.
	HealthDegraded = "degraded"
	// HealthStale: no heartbeat for three intervals (set by the control
	// plane).
	HealthStale = "stale"
	// HealthRevoked: its identity was revoked (set by the control plane).
	HealthRevoked = "revoked"
)

// JoinRequest is a data plane asking for an identity.
type JoinRequest struct {
	// Token is the join token (single use).
	Token string `json:"token"`
	// Name is the data plane's name; empty takes the token's.
	Name string `json:"name,omitempty"`
	// CSR is a PEM certificate request for the data plane's own key
	// (ECDSA P-256). Its subject is ignored: the control plane names the
	// certificate.
	CSR string `json:"csr"`
	// KeyID is the bundle public key the data plane pins (KeyID): a
	// control plane signing with another key refuses the join before it
	// spends the token.
	KeyID string `json:"keyId"`
	// Address is where the data plane serves traffic, for listings.
	Address string `json:"address,omitempty"`
}

// JoinResponse is the identity a control plane gives a data plane.
type JoinResponse struct {
	Name string `json:"name"`
	// Certificate is the client certificate (PEM), valid for CertTTL.
	Certificate string `json:"certificate"`
	// CA is the fleet CA's certificate (PEM).
	CA string `json:"ca"`
	// KeyID names the key bundles are signed with.
	KeyID string `json:"keyId"`
	// HeartbeatInterval is how often to send heartbeats (Go duration).
	HeartbeatInterval string `json:"heartbeatInterval"`
}

// RenewRequest asks for a new certificate for a new key, with the
// current certificate as the credential.
type RenewRequest struct {
	CSR string `json:"csr"`
}

// RenewResponse is the new certificate.
type RenewResponse struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
}

// Heartbeat is what a data plane reports; its name comes from its
// certificate.
type Heartbeat struct {
	Address   string `json:"address,omitempty"`
	Revision  int64  `json:"revision"`
	Digest    string `json:"digest,omitempty"`
	Health    string `json:"health"`
	LastError string `json:"lastError,omitempty"`
	Version   string `json:"version,omitempty"`
}

// HeartbeatResponse tells the data plane when to come back.
type HeartbeatResponse struct {
	Interval string `json:"interval"`
	// Revision is the control plane's current revision.
	Revision int64 `json:"revision"`
}

// DataPlane is one row of `stoa get dataplanes`: live state, not a spec
// kind.
type DataPlane struct {
	Name string `json:"name"`
	// Address is the address the data plane advertises, else the one its
	// last heartbeat came from.
	Address string `json:"address,omitempty"`
	// Revision and Digest are what it serves (0: nothing yet).
	Revision int64  `json:"revision"`
	Digest   string `json:"digest,omitempty"`
	// Lag is the control plane's revision minus the served one.
	Lag       int64     `json:"lag"`
	LastSeen  time.Time `json:"lastSeen,omitzero"`
	Health    string    `json:"health"`
	LastError string    `json:"lastError,omitempty"`
	Version   string    `json:"version,omitempty"`
	JoinedAt  time.Time `json:"joinedAt,omitzero"`
	// CertificateExpires is when its current certificate expires.
	CertificateExpires time.Time `json:"certificateExpires,omitzero"`
}

// DataPlaneList is the answer of `stoa get dataplanes`; empty on a
// standalone stoad.
type DataPlaneList struct {
	// Revision is the control plane's current revision (lags are
	// relative to it).
	Revision int64       `json:"revision"`
	Items    []DataPlane `json:"items"`
}

// Join token states.
const (
	TokenActive  = "active"
	TokenUsed    = "used"
	TokenExpired = "expired"
)

// JoinToken describes a join token; the secret is never part of it.
type JoinToken struct {
	// ID names the token in listings and for revocation (the first
	// twelve hex digits of its SHA-256).
	ID string `json:"id"`
	// Name, when set, is the only data plane name the token admits.
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	CreatedBy string    `json:"createdBy,omitempty"`
	State     string    `json:"state"`
	UsedAt    time.Time `json:"usedAt,omitzero"`
	UsedBy    string    `json:"usedBy,omitempty"`
}

// NewJoinToken is a token just made: the only time its secret is shown.
type NewJoinToken struct {
	JoinToken
	Token string `json:"token"`
}

// Sync states of a data plane.
const (
	// StateStarting: nothing loaded yet.
	StateStarting = "starting"
	// StateJoining: asking the control plane for an identity.
	StateJoining = "joining"
	// StateConnected: the last request to the control plane succeeded.
	StateConnected = "connected"
	// StatePartitioned: the control plane cannot be reached; the data
	// plane serves its last good bundle.
	StatePartitioned = "partitioned"
	// StateUnauthorized: the control plane refuses the data plane's
	// identity (revoked, expired, replaced): it needs a new join token.
	StateUnauthorized = "unauthorized"
)

// SyncStatus is a data plane's view of its control plane, for
// `stoa status`.
type SyncStatus struct {
	// ControlPlane is the control plane's URL.
	ControlPlane string `json:"controlPlane"`
	Name         string `json:"name,omitempty"`
	// State is one of the State* constants; Since when it began.
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// Revision and Digest are what is served; Origin says whence:
	// "control-plane" or "disk" (the last good bundle, at start).
	Revision int64  `json:"revision"`
	Digest   string `json:"digest,omitempty"`
	Origin   string `json:"origin,omitempty"`
	// LastSync is when the last revision was applied.
	LastSync time.Time `json:"lastSync,omitzero"`
	// LastContact is when the control plane last answered.
	LastContact time.Time `json:"lastContact,omitzero"`
	// LastError is the last failure (network, apply, disk), cleared by a
	// successful sync.
	LastError string `json:"lastError,omitempty"`
	// LastRefusal is the last bundle refused (kept until a newer one is
	// accepted).
	LastRefusal *Refusal `json:"lastRefusal,omitempty"`
	// CertificateExpires is when the identity's certificate expires.
	CertificateExpires time.Time `json:"certificateExpires,omitzero"`
	// Hint says what to do when State is not connected.
	Hint string `json:"hint,omitempty"`
}

// Refusal is a bundle a data plane refused to serve.
type Refusal struct {
	// Reason is bundle.Reason's: signature, digest, stale, conflict,
	// base, malformed.
	Reason   string    `json:"reason"`
	Revision int64     `json:"revision,omitempty"`
	Digest   string    `json:"digest,omitempty"`
	Message  string    `json:"message"`
	Hint     string    `json:"hint,omitempty"`
	At       time.Time `json:"at"`
}

// ReadOnlyError is what a data plane answers to a write (apply, delete,
// rollback, keys): its configuration comes from its control plane.
type ReadOnlyError struct{ ControlPlane string }

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("this stoad is a data plane of %s and has no write API", e.ControlPlane)
}

// Hint names where to write instead.
func (e *ReadOnlyError) Hint() string {
	return fmt.Sprintf("apply to the control plane instead: stoa context add cp --server %s, then stoa apply --context cp", e.ControlPlane)
}

var nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// CheckName explains why s is not a valid data plane name (a DNS label
// starting with a letter, at most 63 characters).
func CheckName(s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("data plane name %q is not a DNS label (lower-case letters, digits and '-', starting with a letter, at most 63 characters)", s)
	}
	return nil
}

// KeyID names a bundle signing key: "sha256:" and the hex SHA-256 of its
// PKIX (SubjectPublicKeyInfo) DER encoding, the bytes of cosign.pub.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("name bundle key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
