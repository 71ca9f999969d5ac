package redislimit

import (
	"context"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/stoa-gateway/stoa/pkg/limits"
)

// Script is the Lua source of the GCRA script: one atomic take (or return)
// of tokens over several keys. gcra.lua documents its arguments.
//
//go:embed gcra.lua
var Script string

var gcra = rueidis.NewLuaScript(Script)

// op is one key's part in a script call.
type op struct {
	name       string
	shape      limits.Shape
	want, need int64
}

// result is one key's answer: tokens granted, its debt after the call and,
// when it could not grant its need, the time until it can.
type result struct {
	granted int64
	debt    time.Duration
	retry   time.Duration
}

// keySlack is how long a key outlives its TAT in Redis. A key whose TAT
// has passed is a full bucket, the same as no key, so expiring it loses
// nothing; the slack only covers clock skew between data planes when they
// send their own clocks (Options.Now), and costs a few dozen bytes per key
// for that long.
const keySlack = 10 * time.Second

// run calls the script for ops. now is the caller's clock (Unix), or zero
// for the server's. all asks for all-or-none: ok is then false when some
// key could not grant its need, and nothing was charged. res must have
// room for len(ops) results.
func run(ctx context.Context, cl rueidis.Client, ops []op, now time.Time, all bool, res []result) (ok bool, err error) {
	keys := make([]string, len(ops))
	args := make([]string, 4, 4+4*len(ops))
	if !now.IsZero() {
		args[0], args[1] = strconv.FormatInt(now.Unix(), 10), strconv.Itoa(now.Nanosecond())
	}
	args[2] = "0"
	if all {
		args[2] = "1"
	}
	args[3] = strconv.FormatInt(keySlack.Milliseconds(), 10)
	for i, o := range ops {
		keys[i] = o.name
		args = append(args,
			strconv.FormatInt(int64(o.shape.Interval), 10),
			strconv.FormatInt(int64(o.shape.Capacity), 10),
			strconv.FormatInt(o.want, 10),
			strconv.FormatInt(o.need, 10))
	}
	v, err := gcra.Exec(ctx, cl, keys, args).AsIntSlice()
	if err != nil {
		return false, err
	}
	if len(v) != 1+3*len(ops) {
		return false, fmt.Errorf("redis script answered %d values for %d keys", len(v), len(ops))
	}
	for i := range ops {
		res[i] = result{granted: v[1+3*i], debt: time.Duration(v[2+3*i]), retry: time.Duration(v[3+3*i])}
	}
	return v[0] == 1, nil
}

// kindNames are the Redis key segments of the kinds stoa uses; others are
// written as k<number>.
var kindNames = [...]string{
	limits.KindNone:         "none",
	limits.KindTenant:       "tenant",
	limits.KindConsumer:     "consumer",
	limits.KindTool:         "tool",
	limits.KindOperation:    "operation",
	limits.KindToolSet:      "toolset",
	limits.KindSource:       "source",
	limits.KindConsumerTool: "consumer-tool",
}

// keyName is the Redis key of k: prefix, "rl:", the kind, ":" and A and B
// as 32 hex digits, e.g. "stoa:rl:tenant:9f2c…". It is stable across data
// planes exactly when k is (limits.NameKey, limits.AddrKey).
func keyName(prefix string, k limits.Key) string {
	b := make([]byte, 0, len(prefix)+3+14+1+32)
	b = append(b, prefix...)
	b = append(b, "rl:"...)
	if int(k.Kind) < len(kindNames) {
		b = append(b, kindNames[k.Kind]...)
	} else {
		b = append(b, 'k')
		b = strconv.AppendUint(b, uint64(k.Kind), 10)
	}
	b = append(b, ':')
	var ab [16]byte
	for i := range 8 {
		ab[i] = byte(k.A >> (56 - 8*i))
		ab[8+i] = byte(k.B >> (56 - 8*i))
	}
	b = hex.AppendEncode(b, ab[:])
	return string(b)
}
