package common

import (
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

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

// Roles of a stoad, as api.Status.Role reports them ("" standalone).
const (
	RoleControlPlane = "control-plane"
	RoleDataPlane    = "data-plane"
)

// StatusMsg delivers stoad's status, polled every few seconds: its role
// and, on a data plane, where its configuration comes from.
type StatusMsg struct{ Status *api.Status }

// FleetMsg delivers a control plane's data planes (List), or why they
// could not be listed (Err; the last list stays on screen). At is when
// the list was fetched: "last seen" ages are relative to it.
type FleetMsg struct {
	List *fleet.DataPlaneList
	Err  error
	At   time.Time
}
