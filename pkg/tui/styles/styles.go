// Package styles holds the dashboard's lipgloss styles in one place, so
// every component looks the same and a colour change is one edit. Bubble
// Tea downsamples the colours to what the terminal supports and drops them
// under NO_COLOR.
package styles

import "charm.land/lipgloss/v2"

// Styles are the dashboard's styles.
type Styles struct {
	App        lipgloss.Style
	Title      lipgloss.Style // daemon name in the header
	Muted      lipgloss.Style // secondary text
	Label      lipgloss.Style // "req/s", "p99" labels
	Value      lipgloss.Style // figures
	Live       lipgloss.Style // connection indicator when streaming
	Warning    lipgloss.Style // reconnecting, degraded
	Error      lipgloss.Style // 5xx, down
	OK         lipgloss.Style // healthy
	Rule       lipgloss.Style // horizontal separators
	PanelTitle lipgloss.Style
	TableHead  lipgloss.Style
	Tenant     lipgloss.Style // tenant rows of the table
	Selected   lipgloss.Style // the selected row
	Filter     lipgloss.Style // the filter prompt
	HelpKey    lipgloss.Style
	HelpDesc   lipgloss.Style
	Spark      lipgloss.Style
}

// Default returns the default (dark-background friendly) styles.
func Default() *Styles {
	accent := lipgloss.Color("#7D56F4")
	return &Styles{
		App:        lipgloss.NewStyle(),
		Title:      lipgloss.NewStyle().Bold(true).Foreground(accent),
		Muted:      lipgloss.NewStyle().Foreground(lipgloss.Color("245")),
		Label:      lipgloss.NewStyle().Foreground(lipgloss.Color("245")),
		Value:      lipgloss.NewStyle().Bold(true),
		Live:       lipgloss.NewStyle().Foreground(lipgloss.Color("42")),
		Warning:    lipgloss.NewStyle().Foreground(lipgloss.Color("214")),
		Error:      lipgloss.NewStyle().Foreground(lipgloss.Color("196")),
		OK:         lipgloss.NewStyle().Foreground(lipgloss.Color("42")),
		Rule:       lipgloss.NewStyle().Foreground(lipgloss.Color("238")),
		PanelTitle: lipgloss.NewStyle().Bold(true).Foreground(accent),
		TableHead:  lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("250")),
		Tenant:     lipgloss.NewStyle().Bold(true),
		Selected:   lipgloss.NewStyle().Reverse(true),
		Filter:     lipgloss.NewStyle().Foreground(accent),
		HelpKey:    lipgloss.NewStyle().Foreground(lipgloss.Color("250")),
		HelpDesc:   lipgloss.NewStyle().Foreground(lipgloss.Color("241")),
		Spark:      lipgloss.NewStyle().Foreground(lipgloss.Color("39")),
	}
}

// Plain returns styles without colour or emphasis (tests, dumb terminals).
func Plain() *Styles {
	p := lipgloss.NewStyle()
	return &Styles{App: p, Title: p, Muted: p, Label: p, Value: p, Live: p, Warning: p, Error: p, OK: p,
		Rule: p, PanelTitle: p, TableHead: p, Tenant: p, Selected: lipgloss.NewStyle().Reverse(true),
		Filter: p, HelpKey: p, HelpDesc: p, Spark: p}
}
