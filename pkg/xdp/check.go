package xdp

import (
	"fmt"
	"net"
)

// Check reports whether Apply(cfg) would succeed, as far as that can be told
// without changing anything: the config is valid, every interface exists,
// and no interface the Limiter does not already hold carries an XDP program
// that Apply would refuse to replace (another process's bpf_link, or someone
// else's program). The daemon calls it while preparing a reload, so that a
// revision Apply would reject is rejected before it is committed. Errors
// that mean XDP cannot run here at all are not reported: Apply answers those
// with ErrUnsupported and the userspace fallback. What only attaching can
// tell (a driver refusing native mode) is not checked.
func (l *Limiter) Check(cfg Config) error {
	s, err := cfg.settings()
	if err != nil {
		return err
	}
	for _, name := range s.ifaces {
		if _, err := net.InterfaceByName(name); err != nil {
			return fmt.Errorf("check xdp config: interface %s: %w", name, err)
		}
	}
	if missingCapabilities() != "" {
		return nil
	}
	l.mu.Lock()
	held := make(map[string]bool, len(l.links))
	for name := range l.links {
		held[name] = true
	}
	l.mu.Unlock()
	for _, name := range s.ifaces {
		if held[name] {
			continue
		}
		if err := checkHook(name); err != nil {
			return err
		}
	}
	return nil
}
