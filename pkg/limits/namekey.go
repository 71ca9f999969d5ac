package limits

import (
	"crypto/sha256"
	"encoding/binary"
)

// NameKey returns the key of a named entity — a tenant, tool, ToolSet,
// operation or consumer — that is the same in every process on every
// machine: the first 128 bits of SHA-256("stoa limits v1\x00" + name).
// A fleet sharing limits through Redis (pkg/limits/redislimit) must build
// its keys with NameKey or AddrKey, never StringKey, BytesKey or per-process
// numbering: data planes agree on a bucket only when they agree on its key.
//
// Names should say what they name, e.g. "tool/acme/billing-api". Kind is
// part of the key, so the same name under two kinds gives two keys. The
// hash is unkeyed but collision-resistant: finding two names with the same
// key takes about 2^64 SHA-256 evaluations. It costs a few hundred
// nanoseconds, so compute keys when the route table is compiled, not per
// request.
func NameKey(kind Kind, name string) Key {
	h := sha256.New()
	h.Write([]byte("stoa limits v1\x00"))
	h.Write([]byte(name))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return Key{Kind: kind, A: binary.BigEndian.Uint64(sum[:8]), B: binary.BigEndian.Uint64(sum[8:16])}
}
