package localapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/fleet"
)

// Fleet is a control plane's fleet management (pkg/fleet/controlplane):
// the data planes it knows and the join tokens that admit new ones.
type Fleet interface {
	DataPlanes(ctx context.Context) (fleet.DataPlaneList, error)
	CreateJoinToken(ctx context.Context, name string, ttl time.Duration, actor string) (fleet.NewJoinToken, error)
	JoinTokens(ctx context.Context) ([]fleet.JoinToken, error)
	RevokeJoinToken(ctx context.Context, id, actor string) error
	// RevokeDataPlane refuses every certificate of the data plane from
	// its next request on.
	RevokeDataPlane(ctx context.Context, name string) error
}

type fleetAPI struct{ f Fleet }

// registerFleet registers the fleet management routes on every stoad: a
// standalone one lists no data planes and says, for join tokens, what
// would make it a control plane that has them.
func (s *Server) registerFleet() {
	f := fleetAPI{s.o.Services.Fleet}
	s.handle("GET "+api.PathDataPlanes, PermRead, f.dataPlanes)
	s.handle("GET "+api.PathJoinTokens, PermRead, f.tokens)
	s.handle("POST "+api.PathJoinTokens, PermWrite, f.createToken)
	s.handle("DELETE "+api.PathJoinTokens+"/{id}", PermWrite, f.revokeToken)
	s.handle("POST "+api.PathDataPlanes+"/{name}/revoke", PermWrite, f.revokeDataPlane)
}

// noFleet answers the join token and revocation routes of a stoad
// without fleet mode.
func noFleet() error {
	return apiError(api.CodeConflict, "this stoad has no fleet: data planes join a control plane that signs bundles",
		"start the control plane with --role control-plane --bundle-signing-key cosign.key (docs/fleet.md, \"Data planes\")")
}

func (f fleetAPI) dataPlanes(w http.ResponseWriter, r *http.Request, p Peer) error {
	out := fleet.DataPlaneList{Items: []fleet.DataPlane{}}
	if f.f != nil {
		var err error
		if out, err = f.f.DataPlanes(r.Context()); err != nil {
			return err
		}
		if out.Items == nil {
			out.Items = []fleet.DataPlane{}
		}
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (f fleetAPI) tokens(w http.ResponseWriter, r *http.Request, p Peer) error {
	out := api.JoinTokenList{Items: []fleet.JoinToken{}}
	if f.f == nil {
		return WriteJSON(w, http.StatusOK, out)
	}
	toks, err := f.f.JoinTokens(r.Context())
	if err != nil {
		return err
	}
	if toks != nil {
		out.Items = toks
	}
	return WriteJSON(w, http.StatusOK, out)
}

func (f fleetAPI) createToken(w http.ResponseWriter, r *http.Request, p Peer) error {
	var in api.JoinTokenCreateRequest
	if err := DecodeBody(r, w, &in); err != nil {
		return err
	}
	if f.f == nil {
		return noFleet()
	}
	var ttl time.Duration
	if in.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(strings.TrimSpace(in.TTL)); err != nil || ttl <= 0 {
			return apiError(api.CodeBadRequest, fmt.Sprintf("create join token: --ttl %q is not a duration", in.TTL),
				"write it like 30m, 1h or 72h (from 1m to 168h)")
		}
	}
	tok, err := f.f.CreateJoinToken(r.Context(), in.Name, ttl, p.Actor)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, tok)
}

func (f fleetAPI) revokeToken(w http.ResponseWriter, r *http.Request, p Peer) error {
	if f.f == nil {
		return noFleet()
	}
	id := r.PathValue("id")
	if err := f.f.RevokeJoinToken(r.Context(), id, p.Actor); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, api.JoinTokenRevokeResponse{ID: strings.ToLower(strings.TrimSpace(id)), Revoked: true})
}

func (f fleetAPI) revokeDataPlane(w http.ResponseWriter, r *http.Request, p Peer) error {
	if f.f == nil {
		return noFleet()
	}
	name := r.PathValue("name")
	if err := f.f.RevokeDataPlane(r.Context(), name); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, api.DataPlaneRevokeResponse{Name: name, Revoked: true})
}
