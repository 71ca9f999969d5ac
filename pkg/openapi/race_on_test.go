//go:build race

package openapi

// raceEnabled: the race detector multiplies time and memory, so the
// GitHub-sized import is measured only without it.
const raceEnabled = true
