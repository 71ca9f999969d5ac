package localapi

import (
	"net/http"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/quota"
)

type quotasAPI struct{ q Quotas }

func toAPIQuota(s quota.Status) api.QuotaStatus {
	return api.QuotaStatus{Tenant: s.Tenant, Name: s.Name, Consumer: s.Consumer, Plan: s.Plan, Tool: s.Tool, ToolSet: s.ToolSet,
		State: s.State, ExpiresAt: s.ExpiresAt, Daily: s.Daily, DailyUsed: s.DailyUsed, DailyReset: s.DailyReset,
		Monthly: s.Monthly, MonthlyUsed: s.MonthlyUsed, MonthlyReset: s.MonthlyReset}
}

func (q quotasAPI) list(w http.ResponseWriter, r *http.Request, p Peer) error {
	ns := r.URL.Query().Get("namespace")
	now := q.q.Now()
	out := api.QuotaList{Now: now.UTC(), Items: []api.QuotaStatus{}}
	for _, s := range q.q.Statuses(now) {
		if ns != "" && s.Tenant != ns {
			continue
		}
		out.Items = append(out.Items, toAPIQuota(s))
	}
	return WriteJSON(w, http.StatusOK, out)
}
