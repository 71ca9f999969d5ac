package common

import (
	"strconv"
	"strings"

	"github.com/stoa-gateway/stoa/pkg/api"
)

// Plural is "1 tool", "3 tools".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// Wrap breaks plain text into lines of at most width columns at spaces,
// keeping at most maxLines. When text remains, the last line ends at a
// word boundary with "…", so a sentence is never cut inside a word. A word
// longer than width is cut (with "…"): there is no better place.
func Wrap(text string, width, maxLines int) []string {
	if width <= 0 || maxLines <= 0 {
		return nil
	}
	var lines []string
	cur := ""
	for _, w := range strings.Fields(text) {
		if Width(w) > width {
			w = Fit(w, width)
		}
		if cur != "" && Width(cur)+1+Width(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur == "" {
			cur = w
		} else {
			cur += " " + w
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	if len(lines) > maxLines {
		lines = lines[:maxLines]
		lines[maxLines-1] = ellipsize(lines[maxLines-1], width)
	}
	return lines
}

// ellipsize marks a line as cut short, dropping whole words until "…"
// fits after the last one.
func ellipsize(line string, width int) string {
	for Width(line)+1 > width {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return Fit(line+"…", width)
		}
		line = line[:i]
	}
	return strings.TrimRight(line, " ,;:(") + "…"
}

// JoinWrapped lays items out left to right separated by sep, starting a
// new line (never splitting an item) when the next would pass width.
func JoinWrapped(items []string, sep string, width int) []string {
	var lines []string
	cur := ""
	for _, it := range items {
		switch {
		case cur == "":
			cur = it
		case Width(cur)+Width(sep)+Width(it) <= width:
			cur += sep + it
		default:
			lines = append(lines, cur)
			cur = it
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// XDPMode names what limits connections before the proxy: the attached
// XDP mode, the userspace limiter XDP fell back to, or nothing.
func XDPMode(x *api.XDPStats) string {
	switch {
	case x.Attached:
		return x.Mode
	case x.Fallback:
		return "off (userspace limiter)"
	}
	return "off"
}

// XDPSummary is one line on the pre-proxy limiter for plain output (stoa
// top): with XDP attached its packet rates; while the userspace limiter
// stands in, its connection rates (not "passed packets", which XDP off
// could not have); with neither, why.
func XDPSummary(x *api.XDPStats) string {
	switch {
	case x.Attached:
		return "xdp " + x.Mode + " · " + Rate(x.PassedRate) + " passed/s · " + Rate(x.DroppedRate) + " dropped/s · " +
			Plural(x.Blocks, "block", "blocks") + " · " + Plural(x.TrackedSources, "source", "sources")
	case x.Fallback:
		return "xdp off (userspace limiter) · " + Rate(x.PassedRate) + " conn/s accepted · " + Rate(x.DroppedRate) + " refused/s · " +
			Plural(x.Blocks, "block", "blocks") + " · " + Plural(x.TrackedSources, "source", "sources")
	}
	s := "xdp off"
	if r := XDPReason(x); r != "" {
		s += ": " + r
	}
	return s
}

// XDPReason is why XDP is off, without the "XDP off:" the mode already
// says.
func XDPReason(x *api.XDPStats) string {
	r := strings.TrimSpace(x.Reason)
	for _, p := range []string{"XDP off: ", "xdp off: "} {
		r = strings.TrimPrefix(r, p)
	}
	return r
}
