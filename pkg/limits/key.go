package limits

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"net/netip"
)

// Kind says what a Key identifies. Two keys with the same A and B but
// different kinds are different keys, so a tenant id and a tool id may use
// the same numbering.
type Kind uint8

// The kinds stoa uses. Callers may define more (any value 0–255); the
// limiter only compares them.
const (
	KindNone         Kind = iota // unused; the zero Key
	KindTenant                   // a tenant as a whole
	KindConsumer                 // one consumer (API key or token subject)
	KindTool                     // a Tool as a whole
	KindOperation                // one operation / MCP tool
	KindToolSet                  // a ToolSet's shared limit
	KindSource                   // a client address (or prefix)
	KindConsumerTool             // a consumer on one tool (A consumer, B tool)
)

// Key identifies one rate-limited entity. It is a comparable value of three
// machine words, so it hashes and compares without allocating.
//
// A and B are free-form: small numeric ids (the route table numbers tenants,
// tools and operations when it is compiled), the 16 bytes of an address
// (AddrKey), a pair of ids (KindConsumerTool), or a 128-bit keyed hash of a
// string (StringKey). The limiter compares whole keys (its hash only picks
// where to look), so distinct ids and distinct addresses never share a
// bucket; only StringKey can collide, with probability about n²/2¹²⁹ for n
// live keys, under a per-process random seed an attacker cannot learn.
type Key struct {
	Kind Kind
	A, B uint64
}

// AddrKey returns the key of an IP address. IPv4 and IPv4-mapped IPv6
// addresses give the same key; zones are ignored. To limit IPv6 clients per
// /64, pass netip.PrefixFrom(addr, 64).Masked().Addr().
func AddrKey(kind Kind, addr netip.Addr) Key {
	b := addr.Unmap().As16()
	return Key{Kind: kind, A: binary.BigEndian.Uint64(b[:8]), B: binary.BigEndian.Uint64(b[8:])}
}

// Addr returns the address an AddrKey was built from.
func (k Key) Addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.A)
	binary.BigEndian.PutUint64(b[8:], k.B)
	return netip.AddrFrom16(b).Unmap()
}

// stringSeeds key StringKey's two 64-bit halves. They are random per
// process: keys are not stable across restarts (the limiter's state is not
// either).
var stringSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// StringKey returns the key of a string id such as a consumer name: a
// 128-bit keyed hash of s. It does not allocate.
func StringKey(kind Kind, s string) Key {
	return Key{Kind: kind, A: maphash.String(stringSeeds[0], s), B: maphash.String(stringSeeds[1], s)}
}

// BytesKey is StringKey for a byte slice (a header value from fasthttp);
// BytesKey(k, []byte(s)) == StringKey(k, s).
func BytesKey(kind Kind, b []byte) Key {
	return Key{Kind: kind, A: maphash.Bytes(stringSeeds[0], b), B: maphash.Bytes(stringSeeds[1], b)}
}

// mix returns a keyed 64-bit hash of k. Its low bits pick a shard and its
// top bits the key's home slot in the shard's table. It is two rounds of
// the wyhash "mum" step (a 64×64→128-bit multiply, folded), keyed with a
// per-Limiter random seed on both operands, so that neither shard choice
// nor probe sequences can be steered by someone who controls some of the
// key's bits (an IPv6 source picks its low 64) but not the seed.
func (k Key) mix(seed uint64) uint64 {
	hi, lo := bits.Mul64(k.A^seed^0xa0761d6478bd642f, k.B^uint64(k.Kind)<<56^bits.RotateLeft64(seed, 29)^0xe7037ed1a0b428db)
	hi, lo = bits.Mul64(hi^lo^seed, 0x8ebc6af09c88c6e3)
	return hi ^ lo
}
