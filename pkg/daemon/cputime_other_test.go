//go:build !unix

package daemon

import "time"

// processCPUTime is not measured on this platform.
func processCPUTime() time.Duration { return 0 }
