//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Names the program goes by; a netlink-attached program with this name is a
// leftover of an earlier stoad (see docs/xdp.md, "Stale programs").
const progName = "stoa_xdp_limit"

// kernel is the loaded program and its maps, with typed accessors that keep
// the Go side of the map layout (bpf/include/limiter.h) in one place.
type kernel struct {
	objs xdplimiterObjects

	// What the maps hold, for the values that are written whole: the
	// ports bitmap, and the config, whose STOA_F_HAS_BLOCKS flag follows
	// the blocks trie. Callers serialise access (the Limiter's lock).
	ports  xdplimiterStoaPorts
	config xdplimiterStoaConfig
	blocks map[xdplimiterStoaLpmKey]struct{}
}

// Flags of stoa_config (bpf/include/limiter.h).
const (
	flagCountConns = 1 << 0
	flagHasDeny    = 1 << 1
	flagHasBlocks  = 1 << 2
)

func loadKernel() (*kernel, error) {
	// Only needed before Linux 5.11 (memcg accounting); a no-op after.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise memlock limit: %w", err)
	}
	k := kernel{blocks: map[xdplimiterStoaLpmKey]struct{}{}}
	if err := loadXdplimiterObjects(&k.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load xdp program: kernel verifier rejected it: %+v", ve)
		}
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	return &k, nil
}

func (k *kernel) close() error { return k.objs.Close() }

func (k *kernel) program() *ebpf.Program { return k.objs.StoaXdpLimit }

func (k *kernel) writeConfig(s settings, nowOverride uint64) error {
	v := xdplimiterStoaConfig{
		NsPerToken: uint64(s.step),
		BurstNs:    uint64(s.tolerance),
		NowNs:      nowOverride,
	}
	if s.conns {
		v.Flags |= flagCountConns
	}
	// The deny entries of s are in the trie before this write, and those
	// of the previous config leave it only after.
	if len(s.deny) > 0 {
		v.Flags |= flagHasDeny
	}
	return k.putConfig(v)
}

// putConfig writes v, with STOA_F_HAS_BLOCKS as the blocks trie needs it.
func (k *kernel) putConfig(v xdplimiterStoaConfig) error {
	v.Flags &^= flagHasBlocks
	if len(k.blocks) > 0 {
		v.Flags |= flagHasBlocks
	}
	if err := k.objs.Config.Put(uint32(0), &v); err != nil {
		return fmt.Errorf("write config map: %w", err)
	}
	k.config = v
	return nil
}

func (k *kernel) readConfig() (xdplimiterStoaConfig, error) {
	var v xdplimiterStoaConfig
	err := k.objs.Config.Lookup(uint32(0), &v)
	return v, err
}

func (k *kernel) putPort(p uint16) error {
	if err := k.setPort(p, true); err != nil {
		return fmt.Errorf("add port %d: %w", p, err)
	}
	return nil
}

func (k *kernel) deletePort(p uint16) error {
	if err := k.setPort(p, false); err != nil {
		return fmt.Errorf("remove port %d: %w", p, err)
	}
	return nil
}

// setPort sets or clears p's bit and writes the bitmap whole. A packet
// racing the write reads each word either before or after it; only p's
// bit differs between the two.
func (k *kernel) setPort(p uint16, on bool) error {
	next := k.ports
	if on {
		next.Bits[p/64] |= 1 << (p % 64)
	} else {
		next.Bits[p/64] &^= 1 << (p % 64)
	}
	if err := k.objs.Ports.Put(uint32(0), &next); err != nil {
		return err
	}
	k.ports = next
	return nil
}

func (k *kernel) putDeny(p netip.Prefix) error {
	key := lpmKey(p)
	if err := k.objs.Deny.Put(&key, uint8(1)); err != nil {
		return fmt.Errorf("add deny %s: %w", p, err)
	}
	return nil
}

func (k *kernel) deleteDeny(p netip.Prefix) error {
	key := lpmKey(p)
	if err := k.objs.Deny.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove deny %s: %w", p, err)
	}
	return nil
}

func (k *kernel) putBlock(p netip.Prefix, until time.Time) error {
	return k.putBlockAt(p, monoDeadline(until))
}

// putBlockAt adds or updates p's entry with a deadline on the program's
// clock; the first entry turns STOA_F_HAS_BLOCKS on, after the entry is in
// place.
func (k *kernel) putBlockAt(p netip.Prefix, deadline uint64) error {
	key := lpmKey(p)
	if err := k.objs.Blocks.Put(&key, deadline); err != nil {
		return fmt.Errorf("add block %s: %w", p, err)
	}
	if _, ok := k.blocks[key]; !ok {
		k.blocks[key] = struct{}{}
		if len(k.blocks) == 1 {
			if err := k.putConfig(k.config); err != nil {
				return fmt.Errorf("add block %s: %w", p, err)
			}
		}
	}
	return nil
}

// deleteBlock removes p's entry; the last one turns STOA_F_HAS_BLOCKS off.
func (k *kernel) deleteBlock(p netip.Prefix) error {
	key := lpmKey(p)
	if err := k.objs.Blocks.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove block %s: %w", p, err)
	}
	if _, ok := k.blocks[key]; ok {
		delete(k.blocks, key)
		if len(k.blocks) == 0 {
			if err := k.putConfig(k.config); err != nil {
				return fmt.Errorf("remove block %s: %w", p, err)
			}
		}
	}
	return nil
}

func (k *kernel) counters() (Counters, error) {
	var per []xdplimiterStoaCounters
	if err := k.objs.Counters.Lookup(uint32(0), &per); err != nil {
		return Counters{}, fmt.Errorf("read counters: %w", err)
	}
	var c Counters
	for _, v := range per {
		c.Passed += v.Passed
		c.DroppedRate += v.DroppedRate
		c.DroppedDeny += v.DroppedDeny
		c.DroppedBlock += v.DroppedBlock
		c.Other += v.Other
		c.Fragments += v.Fragment
		c.Malformed += v.Malformed
	}
	return c, nil
}

// sources returns every tracked source. Reading does not refresh the LRU.
func (k *kernel) sources() ([]SourceStat, error) {
	const chunk = 4096
	keys := make([]xdplimiterStoaAddr, chunk)
	vals := make([]xdplimiterStoaSource, chunk)
	var out []SourceStat
	var cursor ebpf.MapBatchCursor
	for {
		n, err := k.objs.Sources.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			out = append(out, SourceStat{
				Addr:    canonicalAddr(netip.AddrFrom16(keys[i].Addr)),
				Passed:  vals[i].Passed,
				Dropped: vals[i].Dropped,
			})
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			return k.sourcesSlow()
		}
		if err != nil {
			return out, fmt.Errorf("read sources: %w", err)
		}
	}
}

func (k *kernel) sourcesSlow() ([]SourceStat, error) {
	var (
		key xdplimiterStoaAddr
		val xdplimiterStoaSource
		out []SourceStat
	)
	it := k.objs.Sources.Iterate()
	for it.Next(&key, &val) {
		out = append(out, SourceStat{Addr: canonicalAddr(netip.AddrFrom16(key.Addr)), Passed: val.Passed, Dropped: val.Dropped})
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("read sources: %w", err)
	}
	return out, nil
}

// lpmKey encodes a canonical prefix as a "deny"/"blocks" trie key: a family
// word, then the address; prefixlen counts the family word's 32 bits.
func lpmKey(p netip.Prefix) xdplimiterStoaLpmKey {
	k := xdplimiterStoaLpmKey{Prefixlen: 32 + uint32(p.Bits())}
	if a := p.Addr(); a.Is4() {
		k.Family = 4
		b := a.As4()
		copy(k.Addr[:], b[:])
	} else {
		k.Family = 6
		k.Addr = a.As16()
	}
	return k
}

// monoNow reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
func monoNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return uint64(ts.Nano())
}

// monoDeadline converts a wall-clock time (with Go's monotonic reading) into
// a bpf_ktime_get_ns deadline; past times become 0, which never blocks.
func monoDeadline(until time.Time) uint64 {
	d := time.Until(until)
	if d <= 0 {
		return 0
	}
	return monoNow() + uint64(d)
}
