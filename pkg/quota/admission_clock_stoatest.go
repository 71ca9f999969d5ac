//go:build stoatest

package quota

import (
	"fmt"
	"time"
)

// testClockOffset reads STOAD_TEST_CLOCK_OFFSET, honoured only in binaries
// built with -tags stoatest (the end-to-end tests build one): a Go
// duration added to the wall clock ("26h", "-1h"), or an RFC 3339 time the
// clock is set to at start ("2026-03-31T23:59:55Z"), after which it runs
// at the normal pace. It moves the clock of subscriptions and quotas
// only (expiresAt, quota periods, Retry-After).
func testClockOffset(getenv func(string) string) (time.Duration, error) {
	v := getenv("STOAD_TEST_CLOCK_OFFSET")
	if v == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return time.Until(t), nil
	}
	return 0, fmt.Errorf("STOAD_TEST_CLOCK_OFFSET=%q: want a duration (26h) or an RFC 3339 time", v)
}
