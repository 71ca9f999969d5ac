package stats

import "time"

// benchSampler is what the Hub runs per sample: an encoded line.
func benchSampler(o Options) func(time.Time) []byte {
	sm := newStreamer(o)
	return func(now time.Time) []byte {
		line, _ := sm.sample(now)
		return line
	}
}
