//go:build linux

package federation

import (
	"syscall"

	"golang.org/x/sys/unix"
)

const limitsUnsupported = false

// sysProcAttr puts the child in its own process group (so stop and crash
// handling reach its children too) and has the kernel kill it if stoad's
// thread that started it dies (Pdeathsig: stoad killed with SIGKILL leaves
// no orphaned servers behind).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// applyLimits sets the child's resource limits with prlimit(2). It runs
// right after fork/exec: the child's first instructions run unlimited, and
// processes it forked before this call keep the old limits (a window of
// microseconds; a cgroup would close it but needs delegation stoad usually
// lacks).
func applyLimits(pid int, l Limits) error {
	set := func(res int, v uint64) error {
		if v == 0 {
			return nil
		}
		return unix.Prlimit(pid, res, &unix.Rlimit{Cur: v, Max: v}, nil)
	}
	if err := set(unix.RLIMIT_AS, l.MemoryBytes); err != nil {
		return err
	}
	if err := set(unix.RLIMIT_CPU, l.CPUSeconds); err != nil {
		return err
	}
	if err := set(unix.RLIMIT_NOFILE, l.OpenFiles); err != nil {
		return err
	}
	return set(unix.RLIMIT_NPROC, l.Processes)
}
