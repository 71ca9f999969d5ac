// Package netnstest builds throwaway network topologies for tests: network
// namespaces joined by veth pairs, with helpers to listen, dial and run
// commands inside them. Everything a test creates is removed by t.Cleanup,
// also when the test fails; namespaces left by a test binary that was killed
// are removed by the next New. Tests using it need root and iproute2 (`ip`);
// call Require first to skip cleanly without them. A Feeder delivers frames
// to a veth as XDP frames, the way a NIC driver hands them to native XDP,
// rather than as socket buffers from a namespace's stack.
//
// Addresses: use the benchmarking range 198.18.0.0/15 (RFC 2544) and
// 2001:db8::/32 (RFC 3849), so test traffic can never leave the machine for
// anything real. Dial test addresses only from inside a test namespace: the
// host namespace's default route may lead off the machine.
package netnstest
