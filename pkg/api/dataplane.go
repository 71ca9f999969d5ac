package api

import (
	"time"

	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// Origins of the configuration a read-only stoad serves.
const (
	OriginControlPlane = "control-plane" // received from the control plane (stoad --join)
	OriginFile         = "file"          // read from the bundle file (stoad --bundle)
	OriginDisk         = "disk"          // the last good bundle kept on disk, since start
)

// BundleStatus is the signed bundle file a stoad serves (stoad --bundle
// FILE --bundle-key cosign.pub), for `stoa status`.
type BundleStatus struct {
	// File and Signature are the bundle and its cosign signature.
	File      string `json:"file"`
	Signature string `json:"signature"`
	// Revision and Digest are what is served (0: nothing yet); Origin
	// says whence: "file", or "disk" (the last good bundle, at start).
	Revision int64  `json:"revision"`
	Digest   string `json:"digest,omitempty"`
	Origin   string `json:"origin,omitempty"`
	// LastLoad is when the served revision was applied; LastCheck when
	// the file was last read.
	LastLoad  time.Time `json:"lastLoad,omitzero"`
	LastCheck time.Time `json:"lastCheck,omitzero"`
	// LastError is the last failure to read or apply the file (cleared
	// by the next load); LastRefusal the last bundle refused (kept until
	// a newer one is served).
	LastError   string         `json:"lastError,omitempty"`
	LastRefusal *fleet.Refusal `json:"lastRefusal,omitempty"`
	// Hint says what to do when something is wrong.
	Hint string `json:"hint,omitempty"`
}
