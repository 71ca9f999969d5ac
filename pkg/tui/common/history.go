package common

// History keeps the last N samples of req/s and p99 per tool (and for the
// totals under the key ""), for the detail view's sparklines. Its memory is
// bounded: N float32 pairs per tool.
type History struct {
	n     int
	tools map[string]*series
	seq   int // samples recorded
}

type series struct {
	rps, p99 []float32 // rings of n
	last     int       // seq of the last sample recorded
}

// NewHistory keeps n samples per tool.
func NewHistory(n int) *History { return &History{n: n, tools: map[string]*series{}} }

// Key names a tool in the history.
func Key(tenant, tool string) string { return tenant + "/" + tool }

// Tick starts a new sample; Record then adds each tool's figures to it.
func (h *History) Tick() { h.seq++ }

// Record adds a tool's figures to the current sample.
func (h *History) Record(key string, rps, p99 float64) {
	s := h.tools[key]
	if s == nil {
		s = &series{rps: make([]float32, h.n), p99: make([]float32, h.n)}
		h.tools[key] = s
	}
	// Tools missing from samples in between had no traffic then.
	for gap := s.last + 1; gap < h.seq && gap <= s.last+h.n; gap++ {
		s.rps[gap%h.n], s.p99[gap%h.n] = 0, 0
	}
	s.rps[h.seq%h.n], s.p99[h.seq%h.n] = float32(rps), float32(p99)
	s.last = h.seq
}

// Series returns a tool's req/s and p99 history, oldest first (at most n
// values, fewer while the dashboard is young).
func (h *History) Series(key string) (rps, p99 []float64) {
	s := h.tools[key]
	if s == nil {
		return nil, nil
	}
	count := min(h.seq, h.n)
	rps, p99 = make([]float64, 0, count), make([]float64, 0, count)
	for i := h.seq - count + 1; i <= h.seq; i++ {
		if i > s.last || i <= s.last-h.n {
			rps, p99 = append(rps, 0), append(p99, 0)
			continue
		}
		rps, p99 = append(rps, float64(s.rps[i%h.n])), append(p99, float64(s.p99[i%h.n]))
	}
	return rps, p99
}
