package auth

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/auth/oidctest"
)

func TestVerifiedTokenCache(t *testing.T) {
	p := newProvider(t)
	r := newResolver(t, p, ResolverConfig{CacheTTL: time.Minute})
	tok := mint(t, p, p.Claims("a", testAud).With("exp", t0.Add(90*time.Second).Unix()))

	first, err := r.Authenticate(bg, tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Authenticate(bg, tok, t0.Add(59*time.Second))
	if err != nil || again != first {
		t.Fatalf("second call not served from cache: %p %p %v", first, again, err)
	}
	// The TTL ends the entry: the token is verified again.
	third, err := r.Authenticate(bg, tok, t0.Add(60*time.Second))
	if err != nil || third == first {
		t.Fatalf("entry outlived the cache TTL: %v", err)
	}
	// The token's exp ends the re-inserted entry before its TTL would.
	if _, err := r.Authenticate(bg, tok, t0.Add(89*time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = r.Authenticate(bg, tok, t0.Add(90*time.Second))
	wantErr(t, err, ErrTokenExpired)
	// A token differing in one byte is not a cache hit.
	_, err = r.Authenticate(bg, []byte(oidctest.TamperSignature(string(tok))), t0)
	wantErr(t, err, ErrTokenSignature)
}

func TestTokenCacheBoundedAndClock(t *testing.T) {
	c := newTokenCache(4 * cacheWays) // four sets
	now := t0.UnixNano()
	far := t0.Add(time.Hour).UnixNano()
	p := &Principal{}
	// Fill one set, mark all but one entry as used, insert one more: the
	// unused entry goes.
	keys := setKeys(c, 2, cacheWays+2)
	for i := range cacheWays {
		c.put(&keys[i], p, far, now)
	}
	for i := 1; i < cacheWays; i++ {
		c.get(&keys[i], now)
	}
	c.put(&keys[cacheWays], p, far, now)
	if c.get(&keys[0], now) != nil {
		t.Error("unused entry kept")
	}
	for i := 1; i <= cacheWays; i++ {
		if c.get(&keys[i], now) == nil {
			t.Errorf("used entry %d evicted", i)
		}
	}
	// Bounded whatever is inserted.
	for i := range 1000 {
		k := sha256.Sum256(fmt.Appendf(nil, "%d", i))
		c.put(&k, p, far, now)
	}
	if n := c.len(); n > 4*cacheWays {
		t.Errorf("cache holds %d entries, bound %d", n, 4*cacheWays)
	}
	// Expired entries are never served and are replaced first.
	c2 := newTokenCache(cacheWays) // one set
	keys = setKeys(c2, 0, cacheWays+1)
	for i := range cacheWays {
		c2.put(&keys[i], p, far, now)
		c2.get(&keys[i], now)
	}
	c2.put(&keys[3], p, now+10, now) // same key: replaced in place
	if c2.get(&keys[3], now+10) != nil {
		t.Error("entry served at its deadline")
	}
	c2.put(&keys[cacheWays], p, far, now+20)
	if c2.get(&keys[cacheWays], now+20) == nil {
		t.Error("new entry not stored")
	}
	for i := range cacheWays {
		if i != 3 && c2.get(&keys[i], now+20) == nil {
			t.Errorf("live entry %d evicted while an expired one existed", i)
		}
	}
	c2.put(&keys[0], p, now, now) // already expired: not stored
	if c2.get(&keys[0], now) == nil {
		t.Error("expired insert replaced a live entry")
	}
}

// setKeys returns n distinct keys falling into set s of c.
func setKeys(c *tokenCache, s uint64, n int) [][32]byte {
	var out [][32]byte
	for i := 0; len(out) < n; i++ {
		k := sha256.Sum256(fmt.Appendf(nil, "k%d", i))
		if c.set(&k) == s {
			out = append(out, k)
		}
	}
	return out
}

// TestCacheConcurrent hammers one small cache from several goroutines with
// hot and cold tokens (meaningful under -race).
func TestCacheConcurrent(t *testing.T) {
	p := newProvider(t)
	r := newResolver(t, p, ResolverConfig{CacheSize: 16})
	var toks [][]byte
	for i := range 40 {
		toks = append(toks, mint(t, p, p.Claims(fmt.Sprint("u", i), testAud)))
	}
	if err := r.Prefetch(bg, t0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				tok := toks[0] // hot
				if i%3 == 0 {
					tok = toks[(i+w)%len(toks)]
				}
				pr, err := r.Authenticate(bg, tok, t0.Add(time.Duration(i)*time.Millisecond))
				if err != nil || pr.Tenant != "acme" {
					t.Errorf("%v %v", pr, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := r.cache.len(); n > 16 {
		t.Errorf("cache grew to %d", n)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	p := newProvider(t)
	r := newResolver(t, p, ResolverConfig{})
	tok := mint(t, p, p.Claims("a", testAud))
	if _, err := r.Authenticate(bg, tok, t0); err != nil {
		t.Fatal(err)
	}
	key, rec := newKey(t, KeyOptions{})
	ix, err := NewKeyIndex([]KeyRecord{rec})
	if err != nil {
		t.Fatal(err)
	}
	var a Authenticator
	a.SetKeys(ix)
	a.SetResolver(r)
	authz := append([]byte("Bearer "), tok...)
	apiKey := []byte(key)
	bearerKey := append([]byte("Bearer "), key...)
	for name, f := range map[string]func(){
		"cached token":      func() { _, _ = r.Authenticate(bg, tok, t0) },
		"key lookup":        func() { _, _ = ix.Lookup(apiKey, t0) },
		"extract":           func() { _, _, _ = ExtractCredential(authz, nil) },
		"authenticator":     func() { _, _ = a.Authenticate(bg, authz, nil, t0) },
		"authenticator key": func() { _, _ = a.Authenticate(bg, bearerKey, nil, t0) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}
