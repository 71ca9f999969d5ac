package federation

import (
	"math"

	"github.com/stoa-gateway/stoa/pkg/spec"
)

// FromSpec maps a Tool object with protocol: mcp onto a Config: the one
// mapping of the spec onto the engine, used by the daemon and by the spec
// package's conformance test (a spec validation accepts is a Config
// Validate accepts). o should be defaulted (spec.Default), as every object
// of a live revision is: the transport is then inferred and the timeouts
// set. It returns false for any other object.
func FromSpec(o *spec.Object) (Config, bool) {
	s, ok := o.Spec.(*spec.ToolSpec)
	if !ok || s.Protocol != spec.ProtocolMCP || s.MCP == nil {
		return Config{}, false
	}
	m := s.MCP
	c := Config{
		Tenant: o.Metadata.Namespace, Tool: o.Metadata.Name,
		Transport: Transport(m.Transport), URL: m.URL, ProtocolVersion: m.ProtocolVersion,
		Command: m.Command, Dir: m.Dir, InheritEnv: m.InheritEnv,
		Timeout: m.Timeout.D(), ConnectTimeout: m.ConnectTimeout.D(),
	}
	if a := s.UpstreamAuth; a != nil {
		c.Auth = &Auth{Header: a.Header, Prefix: a.Prefix, SecretRef: a.SecretRef}
	}
	for _, e := range m.Env {
		c.Env = append(c.Env, EnvVar{Name: e.Name, Value: e.Value, SecretRef: e.SecretRef})
	}
	if l := m.Limits; l != nil {
		c.Limits = Limits{
			MemoryBytes: uint64(max(l.Memory.Bytes(), 0)),
			// RLIMIT_CPU counts whole seconds: a fraction rounds up, so a
			// limit is never tighter than written.
			CPUSeconds: uint64(math.Ceil(l.CPU.D().Seconds())),
			OpenFiles:  uint64(max(l.OpenFiles, 0)),
			Processes:  uint64(max(l.Processes, 0)),
		}
	}
	if f := m.Tools; f != nil {
		c.Tools = ToolFilter{Filter: Filter{Allow: f.Allow, Deny: f.Deny}, Rename: f.Rename}
	}
	if r := m.Resources; r != nil {
		c.Resources = ResourceFilter{Expose: r.Expose, Filter: Filter{Allow: r.Allow, Deny: r.Deny}}
	}
	return c, true
}
