package quota

import (
	"sync/atomic"
	"time"
)

// Quota periods: days reset at UTC midnight, months at 00:00 UTC on the 1st.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
)

// periods is the day and month a moment falls in. One value is shared by
// every request of a UTC day, so the hot path computes nothing but one
// comparison.
type periods struct {
	day, month       int64 // day: days since the Unix epoch; month: year*12 + month-1
	dayStart, dayEnd int64 // Unix nanoseconds, [start, end)
	monthEnd         int64 // Unix nanoseconds of the next 1st, 00:00 UTC
}

const nsPerDay = int64(24 * time.Hour)

func periodsAt(now time.Time) *periods {
	ns := now.UnixNano()
	day := ns / nsPerDay
	if ns < 0 && ns%nsPerDay != 0 {
		day--
	}
	u := now.UTC()
	y, m, _ := u.Date()
	next := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	return &periods{
		day:      day,
		month:    int64(y)*12 + int64(m) - 1,
		dayStart: day * nsPerDay,
		dayEnd:   (day + 1) * nsPerDay,
		monthEnd: next.UnixNano(),
	}
}

// periodCache holds the periods of the most recent day seen.
type periodCache struct{ p atomic.Pointer[periods] }

func (c *periodCache) at(now time.Time) *periods {
	ns := now.UnixNano()
	if p := c.p.Load(); p != nil && ns >= p.dayStart && ns < p.dayEnd {
		return p
	}
	p := periodsAt(now)
	c.p.Store(p)
	return p
}

// ResetAt returns when the period of kind (PeriodDay or PeriodMonth) that
// contains now ends: the next UTC midnight or the next 1st of a month.
func ResetAt(kind string, now time.Time) time.Time {
	p := periodsAt(now)
	if kind == PeriodMonth {
		return time.Unix(0, p.monthEnd).UTC()
	}
	return time.Unix(0, p.dayEnd).UTC()
}
