package spec

import "encoding/json"

// UnmarshalJSON decodes an upstream; a missing weight means 1, as in YAML.
func (w *WeightedUpstream) UnmarshalJSON(b []byte) error {
	type plain WeightedUpstream
	p := plain{Weight: 1}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*w = WeightedUpstream(p)
	return nil
}

// UnmarshalJSON decodes retries; missing attempts mean the default, as in
// YAML.
func (r *Retries) UnmarshalJSON(b []byte) error {
	type plain Retries
	p := plain{Attempts: defaultRetryAttempts}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*r = Retries(p)
	return nil
}
