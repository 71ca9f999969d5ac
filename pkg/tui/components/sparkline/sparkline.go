// Package sparkline renders a series of figures as a one-line chart of
// block characters.
package sparkline

import "strings"

var blocks = []rune("▁▂▃▄▅▆▇█")

// Render draws values into width columns, scaled to their maximum. When
// there are more values than columns, each column shows the mean of its
// share (so five minutes fit in a narrow panel); fewer values are drawn
// right-aligned, as a chart that fills up over time.
func Render(values []float64, width int) string {
	if width <= 0 {
		return ""
	}
	cols := make([]float64, 0, width)
	if len(values) <= width {
		cols = append(cols, values...)
	} else {
		per := float64(len(values)) / float64(width)
		for c := range width {
			lo, hi := int(float64(c)*per), int(float64(c+1)*per)
			hi = max(hi, lo+1)
			sum := 0.0
			for _, v := range values[lo:hi] {
				sum += v
			}
			cols = append(cols, sum/float64(hi-lo))
		}
	}
	peak := 0.0
	for _, v := range cols {
		peak = max(peak, v)
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", width-len(cols)))
	for _, v := range cols {
		if peak <= 0 || v <= 0 {
			b.WriteRune(' ')
			continue
		}
		i := int(v / peak * float64(len(blocks)-1))
		b.WriteRune(blocks[min(max(i, 0), len(blocks)-1)])
	}
	return b.String()
}
