package limits

// Checker is what the proxy needs from a rate limiter: one request's
// limits checked and charged all or none (see Limiter.AllowAll for the
// contract). The local sharded Limiter implements it, and so does the
// fleet backend in pkg/limits/redislimit, which shares the limits of every
// data plane through Redis; the Gateway spec picks one.
//
// Implementations must be safe for concurrent use, must not allocate on
// the common path, and must fill Decision as AllowAll documents, so that
// RateLimit-* and Retry-After headers read the same whichever backend
// decided. A backend that cannot decide (shared state unreachable and
// configured to fail closed) answers with Decision.Unavailable set.
type Checker interface {
	AllowAll(keys []Key, lims []Limit) Decision
}

var _ Checker = (*Limiter)(nil)
