package xdp

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Capacities of the program's maps (bpf/xdp_limiter.c). Ports have no
// limit: the ports map is a bitmap of all 65 536.
const (
	maxSources  = 65536
	maxPrefixes = 16384
)

// settings is a validated, normalized Config.
type settings struct {
	ifaces []string // sorted, unique
	mode   Mode
	// step is the time one token takes to refill, tolerance how far a
	// source's theoretical arrival time may run ahead of now ((burst-1)
	// steps). step 0 means no per-source limit.
	step, tolerance time.Duration
	burst           uint32
	conns           bool
	ports           []uint16       // sorted, unique
	deny            []netip.Prefix // canonical, sorted, unique
}

// Validate reports whether Apply would accept cfg, apart from checks that
// need the system (interfaces exist, privileges).
func (c Config) Validate() error {
	_, err := c.settings()
	return err
}

func (c Config) settings() (settings, error) {
	var s settings
	switch c.Mode {
	case "", ModeAuto:
		s.mode = ModeAuto
	case ModeNative, ModeGeneric:
		s.mode = c.Mode
	default:
		return s, fmt.Errorf("validate xdp config: mode %q is not auto, native or generic", c.Mode)
	}
	switch c.Count {
	case "", CountPackets:
	case CountConnections:
		s.conns = true
	default:
		return s, fmt.Errorf("validate xdp config: count %q is not packets or connections", c.Count)
	}

	for _, name := range c.Interfaces {
		if name == "" || len(name) > 15 {
			return s, fmt.Errorf("validate xdp config: interface name %q must be 1 to 15 characters", name)
		}
		s.ifaces = append(s.ifaces, name)
	}
	slices.Sort(s.ifaces)
	s.ifaces = slices.Compact(s.ifaces)

	step, tolerance, burst, err := bucketParams(c.Rate, c.Burst)
	if err != nil {
		return s, err
	}
	s.step, s.tolerance, s.burst = step, tolerance, burst

	for _, p := range c.Ports {
		if p == 0 {
			return s, fmt.Errorf("validate xdp config: port 0 cannot be protected")
		}
		s.ports = append(s.ports, p)
	}
	slices.Sort(s.ports)
	s.ports = slices.Compact(s.ports)

	for _, p := range c.Deny {
		cp, err := canonicalPrefix(p)
		if err != nil {
			return s, fmt.Errorf("validate xdp config: deny: %w", err)
		}
		s.deny = append(s.deny, cp)
	}
	slices.SortFunc(s.deny, comparePrefix)
	s.deny = slices.Compact(s.deny)
	if len(s.deny) > maxPrefixes/2 {
		// Apply adds the new entries before removing the old ones, so the
		// trie must hold both sets for a moment.
		return s, fmt.Errorf("validate xdp config: %d deny prefixes, at most %d", len(s.deny), maxPrefixes/2)
	}
	return s, nil
}

// bucketParams turns a rate in tokens per second and a burst into GCRA
// parameters.
func bucketParams(rate float64, burst uint32) (step, tolerance time.Duration, depth uint32, err error) {
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0 {
		return 0, 0, 0, fmt.Errorf("validate xdp config: rate %v must be a finite number >= 0", rate)
	}
	if rate == 0 {
		return 0, 0, 0, nil
	}
	ns := math.Round(1e9 / rate)
	if ns < 1 {
		ns = 1
	}
	if ns > float64(365*24*time.Hour) {
		return 0, 0, 0, fmt.Errorf("validate xdp config: rate %v is below one token a year", rate)
	}
	depth = burst
	if depth == 0 {
		depth = uint32(min(math.Ceil(rate), math.MaxUint32))
	}
	step = time.Duration(ns)
	if float64(depth-1)*ns > float64(math.MaxInt64/2) {
		return 0, 0, 0, fmt.Errorf("validate xdp config: burst %d at rate %v spans more time than the clock holds", depth, rate)
	}
	return step, time.Duration(depth-1) * step, depth, nil
}

// canonicalPrefix masks p and turns an IPv4-mapped IPv6 prefix into its IPv4
// form, so that one source prefix has one spelling everywhere.
func canonicalPrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q", p.String())
	}
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), nil
	}
	return netip.PrefixFrom(a, p.Bits()).Masked(), nil
}

// canonicalAddr unmaps IPv4-mapped IPv6 addresses (as a dual-stack listener
// reports IPv4 peers).
func canonicalAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// covers reports whether outer contains every address of inner.
func covers(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// diffSorted returns the elements of next missing from prev (added) and of
// prev missing from next (removed); both inputs are sorted and unique.
func diffSorted[T any](prev, next []T, cmp func(a, b T) int) (added, removed []T) {
	i, j := 0, 0
	for i < len(prev) || j < len(next) {
		switch {
		case i == len(prev):
			added = append(added, next[j])
			j++
		case j == len(next):
			removed = append(removed, prev[i])
			i++
		default:
			switch c := cmp(prev[i], next[j]); {
			case c == 0:
				i++
				j++
			case c < 0:
				removed = append(removed, prev[i])
				i++
			default:
				added = append(added, next[j])
				j++
			}
		}
	}
	return added, removed
}
