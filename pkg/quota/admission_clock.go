//go:build !stoatest

package quota

import "time"

// testClockOffset is the admission clock's offset from the wall clock.
// Release builds always run on the wall clock; builds with the stoatest
// tag read STOAD_TEST_CLOCK_OFFSET (see admission_clock_stoatest.go).
func testClockOffset(func(string) string) (time.Duration, error) { return 0, nil }
