//go:build race

package proxy

// raceEnabled: the race detector slows byte copying about fiftyfold, so
// the large-download test moves less data under it.
const raceEnabled = true
