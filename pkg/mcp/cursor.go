package mcp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
)

// Pagination cursors are opaque to clients: base64url of
//
//	version(1) | list(1) | offset(uvarint) | digest(8) | mac(12)
//
// where digest identifies the exact list contents the caller saw (the FNV
// digest of its pre-encoded view) and mac is HMAC-SHA256 over the audience
// key and the fields before it. A cursor is valid only for the same list,
// the same audience and unchanged contents; any change to the caller's view
// (a reload that touched its tools) expires it, and tampering is detected.
// Both answer -32602, and the client lists again from the start.

const (
	cursorVersion = 1
	listTools     = 1
	listResources = 2
	macLen        = 12
)

var (
	errCursorInvalid = errors.New("invalid cursor")
	errCursorExpired = errors.New("expired cursor: the list changed; list again without a cursor")
)

type cursorCodec struct {
	macs sync.Pool
}

func newCursorCodec(key []byte) cursorCodec {
	k := append([]byte(nil), key...)
	return cursorCodec{macs: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

func (c *cursorCodec) sum(dst []byte, audience string, payload []byte) []byte {
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(audience))
	m.Write([]byte{0})
	m.Write(payload)
	var sum [sha256.Size]byte
	dst = append(dst, m.Sum(sum[:0])[:macLen]...)
	c.macs.Put(m)
	return dst
}

// appendCursor appends the JSON string of a cursor.
func (c *cursorCodec) appendCursor(b []byte, audience string, list byte, offset int, digest uint64) []byte {
	var raw [1 + 1 + binary.MaxVarintLen64 + 8 + macLen]byte
	p := raw[:0]
	p = append(p, cursorVersion, list)
	p = binary.AppendUvarint(p, uint64(offset))
	p = binary.BigEndian.AppendUint64(p, digest)
	p = c.sum(p, audience, p)
	b = append(b, '"')
	b = base64.RawURLEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// decode returns the offset a cursor points to.
func (c *cursorCodec) decode(cur []byte, audience string, list byte, digest uint64, n int) (int, error) {
	var raw [64]byte
	if base64.RawURLEncoding.DecodedLen(len(cur)) > len(raw) {
		return 0, errCursorInvalid
	}
	p, err := base64.RawURLEncoding.AppendDecode(raw[:0], cur)
	if err != nil || len(p) < 2+1+8+macLen || p[0] != cursorVersion {
		return 0, errCursorInvalid
	}
	body, mac := p[:len(p)-macLen], p[len(p)-macLen:]
	var want [macLen]byte
	if !hmac.Equal(c.sum(want[:0], audience, body), mac) || body[1] != list {
		return 0, errCursorInvalid
	}
	off, k := binary.Uvarint(body[2:])
	if k <= 0 || 2+k+8 != len(body) {
		return 0, errCursorInvalid
	}
	if binary.BigEndian.Uint64(body[2+k:]) != digest {
		return 0, errCursorExpired
	}
	if off == 0 || off >= uint64(n) {
		return 0, errCursorInvalid
	}
	return int(off), nil
}

// audience names whose view a cursor was issued for.
func audience(caller Caller) string {
	if caller.Admin {
		return "\x00admin"
	}
	return caller.Tenant
}
