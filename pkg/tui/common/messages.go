package common

import "github.com/stoa-gateway/stoa/pkg/api"

// StatsMsg delivers one sample of stoad's live stats stream.
type StatsMsg struct{ Sample *api.StatsSample }

// EventMsg delivers one event of stoad's event stream.
type EventMsg struct{ Event api.Event }

// ConnMsg reports the connection to stoad: lost (Err set, the feed is
// reconnecting) or back (Connected). A StatsMsg also implies Connected.
type ConnMsg struct {
	Connected bool
	Err       error
}

// OpenToolMsg asks the dashboard to show one tool's detail view.
type OpenToolMsg struct{ Tenant, Tool string }

// CloseDetailMsg returns from the detail view to the table.
type CloseDetailMsg struct{}
