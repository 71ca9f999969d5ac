package xdprt

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/telemetry/stats"
	"github.com/stoa-gateway/stoa/pkg/xdp"
)

// topSourcesShown is how many sources status and the stats stream list.
const topSourcesShown = 5

// Report assembles GET /v1/xdp/status: the plan in force, the limiter's
// state and counters, and why XDP is off when it is.
func (r *Runtime) Report() api.XDPStatus {
	r.mu.Lock()
	p, applyErr := r.plan, r.applyErr
	r.mu.Unlock()
	st := r.l.Status()
	out := api.XDPStatus{
		Attached:         st.Attached,
		Mode:             string(st.Mode),
		Interfaces:       []api.XDPInterface{},
		Reason:           st.Reason,
		Error:            applyErr,
		Fallback:         st.Fallback,
		Ports:            []int{},
		Deny:             []string{},
		Counters:         apiCounters(st.Counters),
		FallbackCounters: apiCounters(r.l.Fallback().Counters()),
		TrackedSources:   st.TrackedSources,
		Blocks:           st.Blocks,
		TopSources:       []api.XDPSource{},
	}
	if !st.Attached {
		out.Mode = "off"
	}
	if p == nil {
		out.Reason = "XDP off: no configuration loaded yet"
		return out
	}
	out.Enabled = p.enabled
	if !p.enabled {
		out.Reason = "XDP off: disabled in the Gateway spec (set spec.xdp.enabled: true)"
	}
	got := map[string]xdp.Mode{}
	for _, ifc := range st.Interfaces {
		got[ifc.Name] = ifc.Mode
	}
	for _, name := range p.cfg.Interfaces {
		out.Interfaces = append(out.Interfaces, api.XDPInterface{Name: name, Mode: string(got[name])})
	}
	for _, port := range p.cfg.Ports {
		out.Ports = append(out.Ports, int(port))
	}
	for _, d := range p.cfg.Deny {
		out.Deny = append(out.Deny, d.String())
	}
	if p.cfg.Rate > 0 {
		out.PerSource = &api.XDPRate{Rate: p.perSource.String(), PerSecond: p.cfg.Rate, Burst: int(p.cfg.Burst), Count: string(p.cfg.Count)}
	}
	if p.esc.after > 0 {
		out.Escalation = &api.XDPEscalation{After: p.esc.after, WithinSeconds: p.esc.within.Seconds(), BlockSeconds: p.esc.block.Seconds(),
			IPv4PrefixLength: p.esc.v4Bits, IPv6PrefixLength: p.esc.v6Bits}
	}
	for _, s := range r.l.TopSources(topSourcesShown) {
		out.TopSources = append(out.TopSources, api.XDPSource{Addr: s.Addr.String(), Passed: s.Passed, Dropped: s.Dropped})
	}
	return out
}

func apiCounters(c xdp.Counters) api.XDPCounters {
	return api.XDPCounters{Passed: c.Passed, DroppedRate: c.DroppedRate, DroppedDeny: c.DroppedDeny, DroppedBlock: c.DroppedBlock,
		Other: c.Other, Fragments: c.Fragments, Malformed: c.Malformed}
}

// Status is the xdp line of `stoa status`: mode, interfaces, counters,
// sources and blocks, or why XDP is off.
func (r *Runtime) Status() api.Component {
	s := r.Report()
	c := api.Component{Name: "xdp", State: "ok", Data: map[string]any{"mode": s.Mode}}
	var names []string
	for _, ifc := range s.Interfaces {
		if ifc.Mode != "" && ifc.Mode != s.Mode {
			names = append(names, ifc.Name+" ("+ifc.Mode+")")
		} else {
			names = append(names, ifc.Name)
		}
	}
	limit := "no per-source limit"
	if ps := s.PerSource; ps != nil {
		limit = fmt.Sprintf("%s per source (burst %d, %s)", ps.Rate, ps.Burst, ps.Count)
	}
	switch {
	case !s.Enabled:
		c.State, c.Detail = "off", s.Reason
	case s.Attached:
		c.Detail = fmt.Sprintf("%s on %s; %s", s.Mode, strings.Join(names, ", "), limit)
	default:
		c.State = "off"
		if ps := s.PerSource; ps != nil {
			// The fallback counts connections, whatever spec.xdp.count says.
			limit = fmt.Sprintf("%s connections per source (burst %d)", ps.Rate, ps.Burst)
		}
		c.Detail = s.Reason + "; the userspace fallback enforces " + limit + " at accept time"
		c.Data["reason"] = s.Reason
	}
	if s.Error != "" {
		c.State = "degraded"
		c.Data["error"] = s.Error
	}
	if s.Enabled {
		c.Data["interfaces"] = names
		c.Data["ports"] = s.Ports
		if len(s.Deny) > 0 {
			c.Data["deny"] = s.Deny
		}
		if e := s.Escalation; e != nil {
			c.Data["escalation"] = fmt.Sprintf("after %d rejections within %s, block %s per IPv4 /%d and IPv6 /%d", e.After,
				time.Duration(e.WithinSeconds*float64(time.Second)), time.Duration(e.BlockSeconds*float64(time.Second)), e.IPv4PrefixLength, e.IPv6PrefixLength)
		}
	}
	k := s.Counters
	if s.Fallback {
		k = s.FallbackCounters
		c.Data["connections"] = map[string]any{"accepted": k.Passed, "rejected_rate": k.DroppedRate, "rejected_deny": k.DroppedDeny, "rejected_block": k.DroppedBlock}
	} else {
		c.Data["packets"] = map[string]any{"passed": k.Passed, "dropped_rate": k.DroppedRate, "dropped_deny": k.DroppedDeny, "dropped_block": k.DroppedBlock}
	}
	c.Data["trackedSources"] = s.TrackedSources
	c.Data["blocks"] = s.Blocks
	return c
}

// XDPStats feeds the live stats stream (pkg/telemetry/stats): counters,
// top sources and the number of blocks in force. While the fallback is in
// force the counters are its connection counts.
func (r *Runtime) XDPStats() stats.XDPReading {
	s := r.Report()
	k := s.Counters
	if s.Fallback {
		k = s.FallbackCounters
	}
	rd := stats.XDPReading{
		Mode: s.Mode, Attached: s.Attached, Fallback: s.Fallback && s.Enabled, Reason: s.Reason,
		Passed: k.Passed, DroppedRate: k.DroppedRate, DroppedDeny: k.DroppedDeny, DroppedBlock: k.DroppedBlock,
		Blocks: s.Blocks, TrackedSources: s.TrackedSources, TopSources: s.TopSources,
	}
	if s.Error != "" {
		rd.Reason = s.Error
	}
	return rd
}

// Blocks lists the blocks in force.
func (r *Runtime) Blocks() []xdp.Block { return r.l.Blocks() }

// maxBlockFor bounds an operator's block; longer means the source belongs
// in spec.xdp.deny, which survives restarts.
const maxBlockFor = 366 * 24 * time.Hour

// ErrBadDuration: an operator's block must last 1ns to 366 days.
var ErrBadDuration = errors.New("block duration out of range")

// Block blocks pfx for d on an operator's request (actor), recorded as
// such in the xdp.block event.
func (r *Runtime) Block(pfx netip.Prefix, d time.Duration, reason, actor string) error {
	if d <= 0 || d > maxBlockFor {
		return ErrBadDuration
	}
	_, err := r.attributed(blockOrigin{prefix: pfx, added: true, by: "operator", actor: actor},
		func() error { return r.l.Block(pfx, d, reason) })
	return err
}

// Unblock lifts the block on pfx on an operator's request (actor) and
// reports whether there was one.
func (r *Runtime) Unblock(pfx netip.Prefix, actor string) (bool, error) {
	return r.attributed(blockOrigin{prefix: pfx, added: false, by: "operator", actor: actor},
		func() error { return r.l.Unblock(pfx) })
}
