//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stoa-gateway/stoa/pkg/api"
	"github.com/stoa-gateway/stoa/pkg/bundle"
	"github.com/stoa-gateway/stoa/pkg/devidp"
	"github.com/stoa-gateway/stoa/pkg/fleet"
	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// A fleet under test: one real control plane (stoad --role control-plane
// on a fresh PostgreSQL database, in the host's network namespace) and
// data planes (real stoads with --join), each in a network namespace of
// its own, joined to the host by a veth pair:
//
//	host                                   namespace dpN
//	sfXXXXN 198.19.B+N.1/24  <── veth ──>  eth0 198.19.B+N.2/24
//	                                       default via 198.19.B+N.1
//
// The control plane listens on the host end of data plane 0's veth
// (198.19.B.1), which every namespace reaches through its default route,
// so cutting any other data plane's link leaves the control plane
// reachable for the rest. Each namespace has an upstream of its own on
// 127.0.0.1:9001 answering "dpN <path>", so one spec serves everywhere
// and the answer says who served it. Proxy and ops listeners bind the
// namespace end of the veth, reachable from the test on the host.
// Addresses are in 198.18.0.0/15 (RFC 2544), B random per test so two
// runs at once do not collide.

const (
	fleetCPPort    = "8443"
	fleetCPPortAlt = "8444" // where the control plane moves while a tamperer holds its address
	fleetProxyPort = "8080"
	fleetOpsPort   = "9090"
	fleetCosignPW  = "fleet-e2e"
)

type fleetNet struct {
	t      *testing.T
	base   int    // third octet of data plane 0's subnet
	tag    string // interface name part, random
	cpAddr string // 198.19.B.1
	cpPort string // the control plane's port: fleetCPPort, or fleetCPPortAlt

	idp     *extIssuer
	db      string
	cp      *cpDaemon
	cpState string // kept across restarts: the TLS certificate, so pins hold
	u       *cliUser
	root    []string // STOA_TOKEN of a cluster admin

	keyFile, evilKeyFile, pubFile string
	dps                           []*fleetDP
}

type fleetDP struct {
	*Daemon
	name   string
	ns     *netnstest.NS
	ip     string // namespace end of the veth
	hostIf string
	client *http.Client
}

// newFleetNet makes n namespaces and starts the control plane (data
// planes join with joinAll or join). It skips unless the test can make
// namespaces (root, iproute2), and without PostgreSQL (failing under
// CI=true).
func newFleetNet(t *testing.T, n int) *fleetNet {
	t.Helper()
	netnstest.Require(t)
	var rb [3]byte
	_, _ = rand.Read(rb[:])
	f := &fleetNet{t: t, base: int(rb[0]) % 240, tag: fmt.Sprintf("%02x%02x", rb[1], rb[2])}
	f.cpAddr, f.cpPort = fmt.Sprintf("198.19.%d.1", f.base), fleetCPPort
	f.db = pgDatabase(t)

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	priv, pub, err := bundle.GenerateKeyPair([]byte(fleetCosignPW))
	if err != nil {
		t.Fatal(err)
	}
	f.keyFile, f.pubFile = write("cosign.key", priv), write("cosign.pub", pub)
	// Another key pair, same password: a control plane signing with it
	// stands for bundle bytes that no longer match the pinned key.
	evil, _, err := bundle.GenerateKeyPair([]byte(fleetCosignPW))
	if err != nil {
		t.Fatal(err)
	}
	f.evilKeyFile = write("evil.key", evil)

	// The namespaces and their links first: the control plane binds the
	// host end of data plane 0's veth.
	for i := range n {
		f.dps = append(f.dps, f.newNamespace(i))
	}

	f.idp = startIssuer(t, devidp.User{Username: "root", Groups: []string{"platform"}})
	f.root = f.idp.token(t, "root")
	f.cpState = filepath.Join(t.TempDir(), "cp-state")
	f.startCP(f.keyFile)
	f.u = newCLIUser(t)
	f.u.addContext("fleet", f.cp)
	return f
}

// newNamespace makes data plane i's namespace, veth, routes and upstream.
func (f *fleetNet) newNamespace(i int) *fleetDP {
	t := f.t
	ns := netnstest.New(t)
	dp := &fleetDP{name: fmt.Sprintf("dp%d", i), ns: ns, ip: fmt.Sprintf("198.19.%d.2", f.base+i),
		hostIf: fmt.Sprintf("sf%s%d", f.tag, i)}
	hostIP := fmt.Sprintf("198.19.%d.1/24", f.base+i)
	run(t, "ip", "link", "add", dp.hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
	t.Cleanup(func() { exec.Command("ip", "link", "del", dp.hostIf).Run() })
	run(t, "ip", "addr", "add", hostIP, "dev", dp.hostIf)
	run(t, "ip", "link", "set", dp.hostIf, "up")
	ns.IP("addr", "add", dp.ip+"/24", "dev", "eth0")
	ns.IP("link", "set", "eth0", "up")
	ns.IP("route", "add", "default", "via", fmt.Sprintf("198.19.%d.1", f.base+i))

	ln, err := ns.Listen("tcp", "127.0.0.1:9001")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, dp.name+" "+r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	dp.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(dp.client.CloseIdleConnections)
	return dp
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// startCP (re)starts the control plane signing with key, on the same
// database and state directory (so the same certificate and fleet CA).
func (f *fleetNet) startCP(key string) {
	t := f.t
	t.Helper()
	addr := net.JoinHostPort(f.cpAddr, f.cpPort)
	d := NewDaemon(t, "--role", "control-plane", "--store", f.db, "--api-listen", addr,
		"--oidc-issuer", f.idp.URL, "--oidc-audience", f.idp.Audience, "--admin-group", "platform",
		"--bundle-signing-key", key)
	d.StateDir = f.cpState
	d.Env = append(d.Env, "SSL_CERT_FILE="+f.idp.certFile, "COSIGN_PASSWORD="+fleetCosignPW)
	cp := &cpDaemon{Daemon: d, API: "https://" + addr}
	cp.Start()
	if f.cp != nil && f.cp.Fingerprint != cp.Fingerprint {
		t.Fatalf("the restarted control plane has another certificate: %s, was %s", cp.Fingerprint, f.cp.Fingerprint)
	}
	f.cp = cp
}

// joinAll makes a join token per data plane with the real CLI and starts
// each data plane in its namespace.
func (f *fleetNet) joinAll() {
	f.t.Helper()
	for _, dp := range f.dps {
		f.join(dp)
	}
}

// join makes a join token for dp with the real CLI and starts dp in its
// namespace with it.
func (f *fleetNet) join(dp *fleetDP) {
	t := f.t
	t.Helper()
	r := f.stoa("fleet", "join-token", "create", "--name", dp.name, "--ttl", "10m")
	expect(t, r, 0, "join-token create")
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(strings.TrimSpace(r.Stdout)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dp.Daemon = NewDaemon(t, "--join", f.cp.API, "--join-token-file", tokFile, "--name", dp.name,
		"--bundle-key", f.pubFile, "--join-fingerprint", f.cp.Fingerprint.String())
	dp.Listen = net.JoinHostPort(dp.ip, fleetProxyPort)
	dp.Ops = net.JoinHostPort(dp.ip, fleetOpsPort)
	dp.start()
}

// start launches the data plane's stoad inside its namespace.
func (dp *fleetDP) start() {
	dp.t.Helper()
	dp.launch(filepath.Join(binDir, "stoad"), []string{"ip", "netns", "exec", dp.ns.Name}, "info", 60*time.Second)
}

// stoa runs the CLI on the control plane's context as a cluster admin.
func (f *fleetNet) stoa(args ...string) Result {
	f.t.Helper()
	return f.u.stoa(f.root, args...)
}

// apply applies yaml on the control plane and returns its new revision.
func (f *fleetNet) apply(yaml string) int64 {
	f.t.Helper()
	expect(f.t, f.stoa("apply", "-f", writeSpecs(f.t, yaml)), 0, "apply on the control plane")
	return f.cpRevision()
}

func (f *fleetNet) cpRevision() int64 {
	f.t.Helper()
	r := f.stoa("status", "-o", "json")
	expect(f.t, r, 0, "status of the control plane")
	var s api.Status
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		f.t.Fatalf("status -o json: %v\n%s", err, r.Stdout)
	}
	return s.Revision
}

// waitServing waits until every listed data plane serves rev.
func (f *fleetNet) waitServing(rev int64, dps ...*fleetDP) {
	f.t.Helper()
	for _, dp := range dps {
		within(f.t, dp.Daemon, fmt.Sprintf("%s to serve revision %d", dp.name, rev), func() bool {
			s := statusOf(f.t, dp.Daemon)
			return s.Revision == rev && s.Fleet != nil && s.Fleet.Revision == rev
		})
	}
}

// get calls the data plane's proxy from the host, over its veth.
func (dp *fleetDP) get(path string) (int, string) {
	dp.t.Helper()
	resp, err := dp.client.Get("http://" + dp.Listen + path)
	if err != nil {
		dp.t.Fatalf("%s: GET %s: %v", dp.name, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serves checks that tool answers through the data plane's proxy.
func (dp *fleetDP) serves(tool string) {
	dp.t.Helper()
	if code, body := dp.get("/acme/" + tool + "/x"); code != 200 || body != dp.name+" /"+tool+"/x" {
		dp.t.Fatalf("%s: tool %s answers %d %q, want 200 %q", dp.name, tool, code, body, dp.name+" /"+tool+"/x")
	}
}

// lacks checks that tool is not routed by the data plane.
func (dp *fleetDP) lacks(tool string) {
	dp.t.Helper()
	if code, body := dp.get("/acme/" + tool + "/x"); code != 404 {
		dp.t.Fatalf("%s: tool %s answers %d %q, want 404", dp.name, tool, code, body)
	}
}

// metrics reads a stoad's /metrics: series (name with labels) → value.
func metrics(t *testing.T, c *http.Client, ops string) map[string]float64 {
	t.Helper()
	resp, err := c.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", ops, err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

func (dp *fleetDP) metrics() map[string]float64 { return metrics(dp.t.(*testing.T), dp.client, dp.Ops) }

// fleetTools is tenant acme with the named public tools, each proxied to
// the namespace's upstream, plus extra documents. Each tool's description
// is a hash of its name: bytes gzip cannot fold into its neighbours', so
// bundle sizes on the wire grow with the number of tools as real ones do.
func fleetTools(names []string, extra string) string {
	var b strings.Builder
	b.WriteString(doc("Tenant", "", "acme", ""))
	for _, n := range names {
		sum := sha256.Sum256([]byte(n))
		b.WriteString(doc("Tool", "acme", n, fmt.Sprintf("upstream: http://127.0.0.1:9001/%s\nauth: {type: none}\ndescription: %x", n, sum)))
	}
	b.WriteString(extra)
	return b.String()
}

// privateFleetRedis is a redis-server of the test's own on the host end of
// data plane 0's veth (so every namespace reaches it), which the test may
// kill and start again; the shared one on 6379 is never touched.
type privateFleetRedis struct {
	t    *testing.T
	bin  string
	addr string
	port string
	cmd  *exec.Cmd
	log  *lockedBuffer
}

// It skips (fails under CI=true) t without redis-server; it stops when
// owner ends.
func startFleetRedis(t, owner *testing.T, ip string) *privateFleetRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed (CI=true: .ci/run installs it)")
		}
		t.Skip("redis-server is not installed (apt-get install redis-server): this test runs one of its own")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	r := &privateFleetRedis{t: owner, bin: bin, addr: addr, port: port}
	r.start()
	owner.Cleanup(r.kill)
	return r
}

func (r *privateFleetRedis) start() {
	r.t.Helper()
	host, _, _ := net.SplitHostPort(r.addr)
	r.log = &lockedBuffer{}
	r.cmd = exec.Command(r.bin, "--port", r.port, "--bind", host, "--save", "", "--appendonly", "no", "--protected-mode", "no")
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start: %v\n%s", r.addr, err, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill is an outage (SIGKILL), not a shutdown.
func (r *privateFleetRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// fleetHit is one request of a load run.
type fleetHit struct {
	at     time.Duration // since the run began, when the answer came
	dp     int
	status int // 0: no answer (a transport error)
}

// fleetLoad sends paced GETs of path to data planes until stopped.
type fleetLoad struct {
	start time.Time
	mu    sync.Mutex
	hits  []fleetHit
	errs  []string
	stop  chan struct{}
	wg    sync.WaitGroup
}

// startFleetLoad sends perDP requests a second to each data plane (workers
// per data plane, each paced; a worker that falls behind does not burst
// to catch up).
func startFleetLoad(dps []*fleetDP, path string, perDP float64, workers int) *fleetLoad {
	l := &fleetLoad{start: time.Now(), stop: make(chan struct{})}
	interval := time.Duration(float64(workers) / perDP * float64(time.Second))
	for i, dp := range dps {
		for w := range workers {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				next := time.Now().Add(time.Duration(w) * interval / time.Duration(workers))
				for {
					select {
					case <-l.stop:
						return
					case <-time.After(time.Until(next)):
					}
					if next = next.Add(interval); next.Before(time.Now()) {
						next = time.Now()
					}
					status := 0
					resp, err := dp.client.Get("http://" + dp.Listen + path)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						status = resp.StatusCode
					}
					l.mu.Lock()
					l.hits = append(l.hits, fleetHit{at: time.Since(l.start), dp: i, status: status})
					if err != nil && len(l.errs) < 10 {
						l.errs = append(l.errs, err.Error())
					}
					l.mu.Unlock()
				}
			}()
		}
	}
	return l
}

// now is the time since the run began.
func (l *fleetLoad) now() time.Duration { return time.Since(l.start) }

// finish stops the run and waits for requests in flight.
func (l *fleetLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// count counts the answers in [from, to) with status (of data plane dp,
// or any when dp < 0) and how many there were in all.
func (l *fleetLoad) count(from, to time.Duration, dp int, match func(status int) bool) (n, all int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hits {
		if h.at < from || h.at >= to || (dp >= 0 && h.dp != dp) {
			continue
		}
		all++
		if match(h.status) {
			n++
		}
	}
	return n, all
}

func fleetAdmitted(status int) bool { return status == 200 }
func fleetFailed(status int) bool   { return status == 0 || status >= 500 }

// rate is admitted answers per second in [from, to) (all data planes).
func (l *fleetLoad) rate(from, to time.Duration, dp int) (admittedPerSec, offeredPerSec float64) {
	n, all := l.count(from, to, dp, fleetAdmitted)
	s := (to - from).Seconds()
	return float64(n) / s, float64(all) / s
}

// sleepUntil sleeps until the run is at.
func (l *fleetLoad) sleepUntil(at time.Duration) { time.Sleep(at - l.now()) }

// redisGateway is a Gateway sharing limits through Redis at addr.
// The timeout is generous: on a busy machine a slower call would count
// as Redis lost and the failure mode would decide what Redis should.
func redisGateway(addr, failMode string) string {
	return doc("Gateway", "", "default", fmt.Sprintf("limits: {backend: redis}\nredis: {address: %q, failMode: %s, timeout: 2s}", addr, failMode))
}

// limitedTool is a tool limited to rate (e.g. 300/s) on the namespace's
// upstream.
func limitedTool(name, rate string) string {
	return doc("Tool", "acme", name, "upstream: http://127.0.0.1:9001/"+name+"\nauth: {type: none}\nrateLimit: "+rate)
}

// limitsDetail is the limits component's state and detail in the data
// plane's status.
func (dp *fleetDP) limitsDetail() (string, string) {
	dp.t.Helper()
	for _, c := range statusOf(dp.t.(*testing.T), dp.Daemon).Components {
		if c.Name == "limits" {
			return c.State, c.Detail
		}
	}
	dp.t.Fatalf("%s: stoa status has no limits component", dp.name)
	return "", ""
}

// tamperer stands at the control plane's address with the control plane's
// own certificate and key (read from its state directory, as someone
// holding the control plane's machine could) and forwards every request
// to the control plane, a data plane's with that data plane's own client
// certificate (read from its fleet directory). While armed it asks for
// full bundles and changes their bytes on the way back — a tool's
// upstream redirected — announcing the digest of the changed bytes, so
// that only the signature can tell.
type tamperer struct {
	t        *testing.T
	srv      *http.Server
	armed    atomic.Bool
	tampered atomic.Int64
	from, to []byte
}

func startTamperer(t *testing.T, f *fleetNet, listen, upstream string, from, to string) *tamperer {
	t.Helper()
	if len(from) != len(to) {
		t.Fatal("tamperer: from and to must have one length")
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(f.cpState, "api-tls", "tls.crt"), filepath.Join(f.cpState, "api-tls", "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	transports := map[string]*http.Transport{}
	transport := func(name string) *http.Transport {
		if tr, ok := transports[name]; ok {
			return tr
		}
		tc := &tls.Config{InsecureSkipVerify: true} // the control plane started by this test
		if name != "" {
			for _, dp := range f.dps {
				if dp.name != name {
					continue
				}
				raw, err := os.ReadFile(filepath.Join(dp.StateDir, "fleet", "identity.json"))
				if err != nil {
					t.Errorf("tamperer: %v", err)
					break
				}
				var id struct{ Key, Certificate string }
				if err := json.Unmarshal(raw, &id); err != nil {
					t.Errorf("tamperer: %s: %v", dp.name, err)
					break
				}
				c, err := tls.X509KeyPair([]byte(id.Certificate), []byte(id.Key))
				if err != nil {
					t.Errorf("tamperer: %s: %v", dp.name, err)
					break
				}
				tc.Certificates = []tls.Certificate{c}
			}
		}
		tr := &http.Transport{TLSClientConfig: tc}
		transports[name] = tr
		return tr
	}
	var mu sync.Mutex
	tm := &tamperer{t: t, from: []byte(from), to: []byte(to)}
	rp := &httputil.ReverseProxy{
		FlushInterval: -1,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "https", Host: upstream})
			r.Out.Host = r.In.Host
			r.Out.Header.Del("Accept-Encoding") // plain bodies, to change them
			if tm.armed.Load() && r.In.URL.Path == fleet.PathWatch {
				q := r.Out.URL.Query()
				q.Set(fleet.QueryFull, "1")
				r.Out.URL.RawQuery = q.Encode()
			}
		},
		Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			name := ""
			if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
				name = req.TLS.PeerCertificates[0].Subject.CommonName
			}
			mu.Lock()
			tr := transport(name)
			mu.Unlock()
			return tr.RoundTrip(req)
		}),
		ModifyResponse: func(resp *http.Response) error {
			if !tm.armed.Load() || resp.Request.URL.Path != fleet.PathWatch || resp.StatusCode != 200 ||
				resp.Header.Get(fleet.HeaderSignature) == "" {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			changed := bytes.ReplaceAll(body, tm.from, tm.to)
			if !bytes.Equal(changed, body) {
				tm.tampered.Add(1)
				resp.Header.Set(fleet.HeaderDigest, fmt.Sprintf("sha256:%x", sha256.Sum256(changed)))
			}
			resp.Body = io.NopCloser(bytes.NewReader(changed))
			resp.ContentLength = int64(len(changed))
			resp.Header.Set("Content-Length", strconv.Itoa(len(changed)))
			return nil
		},
		ErrorLog: log.New(tlogWriter{t}, "tamperer: ", 0),
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	tm.srv = &http.Server{Handler: rp, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}}
	go tm.srv.ServeTLS(ln, "", "")
	t.Cleanup(tm.stop)
	return tm
}

// stop closes the listener and every connection through it.
func (tm *tamperer) stop() { tm.srv.Close() }

// roundTripFunc is a RoundTripper; the outgoing request keeps the
// incoming one's TLS state (Rewrite clones it), which names the data plane.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// tlogWriter writes to the test's log, but for the long polls cut when
// the tamperer stops.
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("context canceled")) {
		w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}
