// Package redislimit is the fleet backend of stoa's rate limits: the same
// GCRA as pkg/limits, with each key's state in Redis so that every data
// plane serving one configuration draws on one bucket.
//
// Limiter implements limits.Checker: AllowAll charges a request's keys all
// or none and fills the same Decision fields as the local limiter, so the
// proxy holds either and writes the same RateLimit-* and Retry-After
// headers.
//
// Redis is kept off most requests' path by leases: a data plane takes a
// few tokens of a key at once (one script call moves the key's theoretical
// arrival time by k intervals, if the bucket has them), spends them
// locally, and tops them up in the background before they run out. Lease
// size follows this data plane's demand on the key and is capped so that
// the tokens the whole fleet holds for one key stay within Options.Accuracy
// of its rate per second; unused tokens go back after Options.LeaseTTL.
// When Redis says a bucket is empty, the data plane refuses locally until
// it has a token again, and asks for that token in the background at the
// moment Redis said it would be there.
//
// When Redis cannot be reached the Limiter fails open (each data plane
// enforces its share of every limit, limit ÷ Options.Peers) or closed
// (Decision.Unavailable: the proxy answers 503), reports the outage through
// Options.OnEvent and Status, and reconnects with backoff by itself.
//
// Blocks shares escalation decisions (a source blocked at L7 on one data
// plane) with the others over Redis pub/sub, and Counters shares quota
// counts.
//
// Keys must be the same on every data plane: build them with
// limits.NameKey or limits.AddrKey. docs/limits.md ("Fleet mode") describes
// the design, the accuracy/latency trade, clock handling and the failure
// modes.
package redislimit
