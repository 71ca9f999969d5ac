package store

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// The one codec for sequence numbers: every log (revisions, events,
// audit, snapshots, deliveries) numbers its records 1, 2, 3, …; stored
// keys are EncodeSeq's, and public ids are an IDPrefix's.

// EncodeSeq is n as 8 big-endian bytes: byte order is numeric order, so
// stored sequences sort as numbers.
func EncodeSeq(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

// DecodeSeq reverses EncodeSeq; false unless b is 8 bytes.
func DecodeSeq(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

// IDPrefix names the kind of a public id: "dlv_42" is delivery 42.
type IDPrefix string

// Public id kinds.
const (
	DeliveryIDs IDPrefix = "dlv"
	SnapshotIDs IDPrefix = "snp"
	EventIDs    IDPrefix = "evt"
)

// Format returns the public id of record n.
func (p IDPrefix) Format(n int64) string { return string(p) + "_" + strconv.FormatInt(n, 10) }

// Parse accepts "<prefix>_<n>" or a bare "<n>" and returns n, which is
// positive; false for anything else (another kind's id included).
func (p IDPrefix) Parse(id string) (int64, bool) {
	id = strings.TrimPrefix(id, string(p)+"_")
	if id == "" || id[0] < '0' || id[0] > '9' { // no sign, no space
		return 0, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
