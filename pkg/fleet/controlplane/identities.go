package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stoa-gateway/stoa/pkg/store"
)

const identityKeyPrefix = "id/"

// identity is what the control plane knows of a data plane's right to
// connect. Only certificates whose serial is Serial or Prev are
// accepted: joining again under a name, or revoking it, cuts off every
// certificate issued before, whatever its expiry, without a growing list
// of revoked serials.
type identity struct {
	// Serial is the newest certificate issued; Prev the one it was
	// renewed from, accepted until it expires in case the data plane
	// never received the answer to its renewal.
	Serial string `json:"serial,omitempty"`
	Prev   string `json:"prev,omitempty"`
	// NotAfter is Serial's expiry.
	NotAfter  time.Time `json:"notAfter,omitzero"`
	JoinedAt  time.Time `json:"joinedAt,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`
}

func (id identity) accepts(serial string) bool {
	return !id.Revoked && serial != "" && (serial == id.Serial || serial == id.Prev)
}

func getIdentity(ctx context.Context, m store.Meta, name string) (identity, bool, error) {
	v, err := m.Get(ctx, store.MetaFleet, identityKeyPrefix+name)
	if errors.Is(err, store.ErrNotFound) {
		return identity{}, false, nil
	} else if err != nil {
		return identity{}, false, err
	}
	var id identity
	if err := json.Unmarshal(v, &id); err != nil {
		return identity{}, false, fmt.Errorf("%w: data plane %s: %v", store.ErrCorrupt, name, err)
	}
	return id, true, nil
}

func putIdentity(ctx context.Context, m store.Meta, name string, id identity) error {
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	return m.Put(ctx, store.MetaFleet, identityKeyPrefix+name, b)
}

// listIdentities returns every identity by name.
func listIdentities(ctx context.Context, st store.Store) (map[string]identity, error) {
	out := map[string]identity{}
	err := st.View(ctx, func(tx store.Tx) error {
		return tx.Meta().List(ctx, store.MetaFleet, func(k string, v []byte) error {
			if len(k) <= len(identityKeyPrefix) || k[:len(identityKeyPrefix)] != identityKeyPrefix {
				return nil
			}
			var id identity
			if err := json.Unmarshal(v, &id); err != nil {
				return fmt.Errorf("%w: data plane %s: %v", store.ErrCorrupt, k[len(identityKeyPrefix):], err)
			}
			out[k[len(identityKeyPrefix):]] = id
			return nil
		})
	})
	return out, err
}
