package sparkline

import (
	"testing"
	"unicode/utf8"
)

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		width  int
		want   string
	}{
		{"empty", nil, 4, "    "},
		{"zeros", []float64{0, 0}, 3, "   "},
		{"ramp", []float64{1, 2, 4, 8}, 4, "▁▂▄█"},
		{"right-aligned", []float64{8}, 3, "  █"},
		{"averaged", []float64{8, 8, 0, 0}, 2, "█ "},
		{"no width", []float64{1}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(tt.values, tt.width)
			if got != tt.want {
				t.Errorf("Render(%v, %d) = %q, want %q", tt.values, tt.width, got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n != tt.width {
				t.Errorf("width %d, want %d", n, tt.width)
			}
		})
	}
}
