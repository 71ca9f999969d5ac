package limits

import (
	"strconv"
	"time"
)

// Decision is the outcome of one check, with what the RateLimit-* and
// Retry-After headers report.
type Decision struct {
	// Allowed reports whether the request was admitted (and charged).
	Allowed bool
	// Limit is the limit's Count (requests per Period): RateLimit-Limit.
	// It is 0 when no limit applied; WriteHeaders then writes nothing.
	Limit int64
	// Remaining is how many more requests the bucket admits right now
	// (at most the Burst): RateLimit-Remaining.
	Remaining int64
	// Reset is the time until the bucket is full again: RateLimit-Reset.
	Reset time.Duration
	// RetryAfter is, when !Allowed, the time after which the same request
	// will be admitted if nothing else charges the key meanwhile.
	RetryAfter time.Duration
	// Index is, for AllowAll, the index of the key this decision describes
	// (the one that rejected, or the most exhausted one); 0 otherwise.
	Index int
	// Unavailable reports a refusal because the limit's shared state could
	// not be reached (a fleet backend configured to fail closed): not the
	// client's fault, so the answer is 503, not 429. Limit is then 0 (no
	// RateLimit-* headers) and RetryAfter says when to try again.
	Unavailable bool
}

// Header names, canonical as written on the wire.
const (
	HeaderLimit      = "RateLimit-Limit"
	HeaderRemaining  = "RateLimit-Remaining"
	HeaderReset      = "RateLimit-Reset"
	HeaderRetryAfter = "Retry-After"
)

// AppendSeconds appends d as whole seconds, rounded up, never negative:
// the RateLimit-Reset value. 0 stays 0; 1ns becomes 1.
func AppendSeconds(dst []byte, d time.Duration) []byte {
	return strconv.AppendInt(dst, ceilSeconds(d), 10)
}

// AppendRetryAfter appends d as whole seconds, rounded up and at least 1:
// the Retry-After value (a client retrying after it is admitted).
func AppendRetryAfter(dst []byte, d time.Duration) []byte {
	return strconv.AppendInt(dst, max(1, ceilSeconds(d)), 10)
}

// ceilSeconds rounds d up to whole seconds without overflowing.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// WriteHeaders appends the header values of d to buf and calls set once per
// header with its name and value (a sub-slice of buf, valid until buf is
// reused). It writes RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset, plus Retry-After when the request was rejected; nothing
// when no limit applied. It returns buf for reuse and, when buf has room
// (64 bytes is always enough) and set does not keep its arguments, does not
// allocate:
//
//	buf = d.WriteHeaders(buf[:0], ctx.Response.Header.SetBytesV)
func (d Decision) WriteHeaders(buf []byte, set func(name string, value []byte)) []byte {
	if d.Limit == 0 {
		return buf
	}
	n := len(buf)
	buf = strconv.AppendInt(buf, d.Limit, 10)
	m := len(buf)
	buf = strconv.AppendInt(buf, max(0, d.Remaining), 10)
	o := len(buf)
	buf = AppendSeconds(buf, d.Reset)
	p := len(buf)
	if !d.Allowed {
		buf = AppendRetryAfter(buf, d.RetryAfter)
	}
	// Call set only after the last append so no value moves under it.
	set(HeaderLimit, buf[n:m:m])
	set(HeaderRemaining, buf[m:o:o])
	set(HeaderReset, buf[o:p:p])
	if !d.Allowed {
		set(HeaderRetryAfter, buf[p:len(buf):len(buf)])
	}
	return buf
}
