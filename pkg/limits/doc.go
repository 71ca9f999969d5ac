// Package limits is stoa's L7 rate limiter: GCRA (the generic cell rate
// algorithm) per key, sharded so that the proxy hot path takes one
// uncontended shard mutex and allocates nothing, plus an Escalator that
// promotes sources which keep being rejected to a callback (the XDP block
// list in stoad).
//
// A Limiter holds only state — one int64 "theoretical arrival time" per
// active key. Limits are passed on every call, so a config reload needs no
// rebuild: the same Limiter keeps its state and the new Limit applies from
// the next call (see Limit for what happens to a key whose limit changed).
//
// The typical proxy call checks every limit that applies to a request at
// once and charges all or none:
//
//	keys := [...]limits.Key{
//		{Kind: limits.KindTenant, A: route.TenantID},
//		{Kind: limits.KindTool, A: route.ToolID},
//		limits.StringKey(limits.KindConsumer, consumerID),
//		limits.AddrKey(limits.KindSource, clientIP),
//	}
//	lims := [...]limits.Limit{route.TenantLimit, route.ToolLimit, plan.Limit, gw.PerSource}
//	d := lim.AllowAll(keys[:], lims[:])
//	buf = d.WriteHeaders(buf[:0], ctx.Response.Header.SetBytesV)
//	if !d.Allowed {
//		esc.Reject(clientIP)
//		// 429
//	}
//
// Checker is AllowAll as an interface: the proxy holds a Checker, either
// this Limiter or the fleet backend in pkg/limits/redislimit, which shares
// limits between data planes through Redis (its keys must be built with
// NameKey or AddrKey, the same on every machine).
//
// docs/limits.md describes the algorithm, the key design, sharding, the
// multi-key semantics, reload behaviour, the memory bounds and fleet mode.
package limits
