//go:build !linux

package xdp

import (
	"errors"
	"net/netip"
	"time"
)

// This file stands in for the Linux-only parts: the Limiter on other systems
// never loads a program and always runs its userspace fallback.

var errNotLinux = errors.New("XDP requires Linux")

func missingCapabilities() string { return "XDP requires Linux" }

type kernel struct{}

func loadKernel() (*kernel, error)                     { return nil, errNotLinux }
func (*kernel) close() error                           { return nil }
func (*kernel) program() *struct{}                     { return nil }
func (*kernel) writeConfig(settings, uint64) error     { return errNotLinux }
func (*kernel) putPort(uint16) error                   { return errNotLinux }
func (*kernel) deletePort(uint16) error                { return errNotLinux }
func (*kernel) putDeny(netip.Prefix) error             { return errNotLinux }
func (*kernel) deleteDeny(netip.Prefix) error          { return errNotLinux }
func (*kernel) putBlock(netip.Prefix, time.Time) error { return errNotLinux }
func (*kernel) deleteBlock(netip.Prefix) error         { return errNotLinux }
func (*kernel) counters() (Counters, error)            { return Counters{}, errNotLinux }
func (*kernel) sources() ([]SourceStat, error)         { return nil, errNotLinux }

type attachment struct {
	name string
	mode Mode
}

func (*attachment) detach() error { return errNotLinux }

func attach(_ *struct{}, _ string, _ Mode, _ func(string, ...any)) (*attachment, error) {
	return nil, errNotLinux
}
