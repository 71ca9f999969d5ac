//go:build race

package dataplane_test

// raceEnabled: the race detector slows decoding tenfold, which turns the
// 10,000-tool tests into minutes on a shared machine; the small tests
// cover the same paths under it.
const raceEnabled = true
