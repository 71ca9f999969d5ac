package localapi

import (
	"encoding/json"
	"net/http"

	"github.com/stoa-gateway/stoa/pkg/api"
)

type statsAPI struct{ s Stats }

// serve answers GET /v1/stats: one sample with rates (waiting up to one
// interval for it), or with ?follow=1 a sample every interval, each
// flushed as it is taken, until the client goes away.
func (s statsAPI) serve(w http.ResponseWriter, r *http.Request, p Peer) error {
	follow := r.URL.Query().Get("follow")
	ch, cancel := s.s.Subscribe()
	defer cancel()
	if follow != "1" && follow != "true" {
		for {
			select {
			case <-r.Context().Done():
				return nil
			case line, ok := <-ch:
				if !ok {
					return apiError(api.CodeUnavailable, "stoad is shutting down", "")
				}
				var s struct {
					IntervalSeconds float64 `json:"intervalSeconds"`
				}
				if json.Unmarshal(line, &s) != nil || s.IntervalSeconds == 0 {
					continue // a stream's first sample has no rates yet
				}
				w.Header().Set("Content-Type", "application/json")
				_, err := w.Write(line)
				return err
			}
		}
	}
	out := startNDJSON(w)
	out.Flush()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case line, ok := <-ch:
			if !ok {
				return nil
			}
			if err := out.SendLine(line); err != nil {
				return nil
			}
		}
	}
}
