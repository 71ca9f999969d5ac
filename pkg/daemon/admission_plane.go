package daemon

import (
	"github.com/stoa-gateway/stoa/pkg/auth"
)

// mgmtPlane is API management: subscriptions and quotas (admission),
// error snapshots, webhooks and the audit trail. DefaultRuntimes wires
// admission.Check into the proxy's Admit hook and snapshots.OnFailure into
// its OnFailure hook; the MCP backend reaches them through
// (*dataPlane).Admission and (*dataPlane).Snapshots.
type mgmtPlane struct {
	admission *Admission
	snapshots *snapshotRuntime
	webhooks  *webhookRuntime
	audit     *auditRuntime
}

func newMgmtPlane(d *Daemon, a *auth.Authenticator) (*mgmtPlane, error) {
	var (
		m   mgmtPlane
		err error
	)
	if m.admission, err = newAdmission(d, a); err != nil {
		return nil, err
	}
	if m.audit, err = newAuditRuntime(d); err != nil {
		return nil, err
	}
	if m.snapshots, err = newSnapshotRuntime(d, m.audit); err != nil {
		return nil, err
	}
	if m.webhooks, err = newWebhookRuntime(d, m.audit); err != nil {
		return nil, err
	}
	return &m, nil
}

// runtimes lists the plane's runtimes. They go before the proxy, so they
// start before it serves and stop after it has drained.
func (m *mgmtPlane) runtimes() []Runtime {
	return []Runtime{m.admission, m.audit, m.snapshots, m.webhooks}
}

// Admission is the subscription and quota check shared by the proxy and
// MCP (nil when the data plane is not built).
func (dp *dataPlane) Admission() *Admission {
	if dp == nil || dp.mgmt == nil {
		return nil
	}
	return dp.mgmt.admission
}

// Snapshots is the error-snapshot recorder shared by the proxy and MCP.
func (dp *dataPlane) Snapshots() *snapshotRuntime {
	if dp == nil || dp.mgmt == nil {
		return nil
	}
	return dp.mgmt.snapshots
}
