//go:build !linux

package federation

import (
	"errors"
	"syscall"
)

const limitsUnsupported = true

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func applyLimits(pid int, l Limits) error {
	if l != (Limits{}) {
		return errors.New("resource limits are applied on Linux only")
	}
	return nil
}
