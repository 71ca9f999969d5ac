//go:build unix

package daemon

import (
	"syscall"
	"time"
)

// processCPUTime is the user+system CPU time this process has used. The
// benchmarks report it next to wall time because the machines they run on
// are shared, which inflates wall time but hardly CPU time.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
