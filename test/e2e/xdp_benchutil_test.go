//go:build linux && xdpbench

package e2e

// Helpers of TestXDPBench (xdp_bench_test.go): CPU pinning and accounting,
// NIC-like veths, a tc egress drop, and a minimal HTTP/1.1 client.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/stoa-gateway/stoa/pkg/netnstest"
)

// benchKeepAlive sends GET path on c, one request at a time, until
// deadline, and returns how many 200s came back. It is a minimal HTTP/1.1
// client, so that the client side costs little CPU next to the server.
func benchKeepAlive(c net.Conn, path string, deadline time.Time) int64 {
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: stoa-bench\r\n\r\n")
	br := bufio.NewReaderSize(c, 16<<10)
	var ok int64
	_ = c.SetDeadline(deadline.Add(5 * time.Second))
	for time.Now().Before(deadline) {
		if _, err := c.Write(req); err != nil {
			return ok
		}
		status, length := 0, -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return ok
			}
			if status == 0 {
				if f := bytes.Fields(line); len(f) > 1 {
					status, _ = strconv.Atoi(string(f[1]))
				}
				continue
			}
			if len(bytes.TrimSpace(line)) == 0 {
				break
			}
			if k, v, found := bytes.Cut(line, []byte(":")); found && bytes.EqualFold(bytes.TrimSpace(k), []byte("Content-Length")) {
				length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
		if length < 0 {
			return ok // this client needs a length
		}
		if _, err := br.Discard(length); err != nil {
			return ok
		}
		if status == http.StatusOK {
			ok++
		}
	}
	return ok
}

// benchGroupSet names groups of threads whose CPU use Part 2 reports
// (STOA_BENCH_DEBUG=1 also logs every group and /proc/stat's view).
type benchGroupSet struct {
	t     *testing.T
	names []string
	tids  map[string]func() []int
}

func benchGroups(t *testing.T, stoad int) *benchGroupSet {
	byComm := func(prefix string) func() []int {
		return func() []int {
			var out []int
			procs, _ := os.ReadDir("/proc")
			for _, p := range procs {
				comm, err := os.ReadFile("/proc/" + p.Name() + "/comm")
				if err == nil && strings.HasPrefix(string(comm), prefix) {
					pid, _ := strconv.Atoi(p.Name())
					out = append(out, benchTasks(t, pid)...)
				}
			}
			return out
		}
	}
	g := &benchGroupSet{t: t, tids: map[string]func() []int{
		"stoad":      func() []int { return benchTasks(t, stoad) },
		"upstreams":  byComm("xdp-upstreams"),
		"napi/s-*":   byComm("napi/s-"),
		"napi/c0+a0": func() []int { return append(byComm("napi/c0")(), byComm("napi/a0")()...) },
		"bench":      func() []int { return benchTasks(t, os.Getpid()) },
		"ksoftirqd":  byComm("ksoftirqd/"),
	}}
	g.names = []string{"stoad", "upstreams", "napi/s-*", "napi/c0+a0", "bench", "ksoftirqd"}
	return g
}

type benchGroupSample struct {
	rt    map[string]map[int]float64
	slots map[string]map[int]float64 // times each thread was scheduled in
	cpu   [2][2]float64              // busy, softirq ticks of cpu0, cpu1
}

func (g *benchGroupSet) read() benchGroupSample {
	s := benchGroupSample{rt: map[string]map[int]float64{}, slots: map[string]map[int]float64{}}
	for _, n := range g.names {
		tids := g.tids[n]()
		s.rt[n] = benchRuntime(tids)
		s.slots[n] = benchSchedField(tids, 2)
	}
	b, _ := os.ReadFile("/proc/stat")
	for _, line := range strings.Split(string(b), "\n") {
		for c := 0; c < 2; c++ {
			if strings.HasPrefix(line, fmt.Sprintf("cpu%d ", c)) {
				f := strings.Fields(line)
				for _, i := range []int{1, 2, 3, 6, 7} {
					v, _ := strconv.ParseFloat(f[i], 64)
					s.cpu[c][0] += v
				}
				s.cpu[c][1], _ = strconv.ParseFloat(f[7], 64)
			}
		}
	}
	return s
}

// since returns each group's CPU use since before, in percent of one CPU,
// how often per second its threads were scheduled in (NAME+" runs/s"), and
// each CPU's busy share ("cpu0", "cpu1", from /proc/stat).
func (g *benchGroupSet) since(before benchGroupSample, el time.Duration) map[string]float64 {
	after := g.read()
	out := map[string]float64{}
	var parts []string
	for _, n := range g.names {
		var sum float64
		for tid, v := range after.rt[n] {
			sum += v - before.rt[n][tid]
		}
		out[n] = sum / float64(el) * 100
		var slots float64
		for tid, v := range after.slots[n] {
			slots += v - before.slots[n][tid]
		}
		out[n+" runs/s"] = slots / el.Seconds()
		parts = append(parts, fmt.Sprintf("%s %.0f%% (%.0f runs/s)", n, out[n], out[n+" runs/s"]))
	}
	for c := 0; c < 2; c++ {
		// /proc/stat counts in USER_HZ (100) ticks: 1e9/el turns ticks into percent.
		busy := (after.cpu[c][0] - before.cpu[c][0]) * 1e9 / float64(el)
		out[fmt.Sprintf("cpu%d", c)] = busy
		parts = append(parts, fmt.Sprintf("cpu%d busy %.0f%% softirq %.0f%%", c,
			busy, (after.cpu[c][1]-before.cpu[c][1])*1e9/float64(el)))
	}
	if os.Getenv("STOA_BENCH_DEBUG") != "" {
		g.t.Log(strings.Join(parts, ", "))
	}
	return out
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchPinThreads moves every thread of this process to cpu (threads
// made later inherit it) and restores all CPUs when the test ends.
func benchPinThreads(t *testing.T, cpu int) {
	t.Helper()
	set := func(s *unix.CPUSet) {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tasks {
			tid, _ := strconv.Atoi(e.Name())
			_ = unix.SchedSetaffinity(tid, s)
		}
	}
	var one, all unix.CPUSet
	one.Set(cpu)
	for i := range runtime.NumCPU() {
		all.Set(i)
	}
	set(&one)
	t.Cleanup(func() { set(&all) })
}

// benchNAPI makes dev (in ns) receive like a NIC: GRO and threaded NAPI
// with interrupt coalescing (polls every rxUsecs µs while traffic flows
// rather than a wake-up per packet), the NAPI thread pinned to cpu and, if
// softirq, scheduled like a softirq (SCHED_FIFO: it preempts tasks);
// otherwise at nice 19. TSO goes off so that every packet dev sends takes
// that path at its peer.
func benchNAPI(t *testing.T, ns *netnstest.NS, dev string, cpu int, softirq bool, rxUsecs int) {
	t.Helper()
	ctx := context.Background()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := ns.Command(ctx, name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v: %s", name, args, err, out)
		}
	}
	run("ethtool", "-K", dev, "gro", "on", "tso", "off")
	run("sh", "-c", fmt.Sprintf("cd /sys/class/net/%s && echo %d > gro_flush_timeout && echo 100 > napi_defer_hard_irqs && echo 1 > threaded", dev, rxUsecs*1000))
	var pid int
	for deadline := time.Now().Add(5 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			comm, err := os.ReadFile("/proc/" + p.Name() + "/comm")
			if err == nil && strings.HasPrefix(string(comm), "napi/"+dev+"-") {
				pid, _ = strconv.Atoi(p.Name())
			}
		}
	}
	if pid == 0 {
		t.Fatalf("no NAPI thread for %s", dev)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(pid, &set); err != nil {
		t.Fatalf("pin napi/%s: %v", dev, err)
	}
	if !softirq {
		if err := unix.Setpriority(unix.PRIO_PROCESS, pid, 19); err != nil {
			t.Fatalf("renice napi/%s: %v", dev, err)
		}
		return
	}
	if out, err := exec.Command("chrt", "-f", "-p", "10", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		t.Fatalf("chrt napi/%s: %v: %s", dev, err, out)
	}
}

// benchEgressDrop drops everything dev (in ns) sends, with a tc BPF
// program on its egress hook.
func benchEgressDrop(t *testing.T, ns *netnstest.NS, dev string) link.Link {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* TC_ACT_SHOT */), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		t.Fatalf("load egress drop: %v", err)
	}
	defer prog.Close()
	var l link.Link
	err = ns.Do(func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifc.Index, Program: prog, Attach: ebpf.AttachTCXEgress})
		return err
	})
	if err != nil {
		t.Fatalf("attach egress drop to %s: %v", dev, err)
	}
	return l
}

// benchThreadCPU is the calling thread's CPU time (ns).
func benchThreadCPU() float64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return float64(ts.Nano())
}

// benchKsoftirqd lists the ksoftirqd thread of cpu: softirq work that the
// kernel defers from a thread pinned there lands in it.
func benchKsoftirqd(t *testing.T, cpu int) []int {
	t.Helper()
	var out []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		comm, err := os.ReadFile("/proc/" + p.Name() + "/comm")
		if err == nil && strings.TrimSpace(string(comm)) == fmt.Sprintf("ksoftirqd/%d", cpu) {
			pid, _ := strconv.Atoi(p.Name())
			out = append(out, pid)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no ksoftirqd/%d thread", cpu)
	}
	return out
}

// benchTasks lists the threads of process pid.
func benchTasks(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		tid, _ := strconv.Atoi(e.Name())
		out = append(out, tid)
	}
	return out
}

// benchRuntime reads how long (ns) each thread has run so far.
func benchRuntime(tids []int) map[int]float64 { return benchSchedField(tids, 0) }

// benchSchedField reads field i of each thread's /proc/PID/schedstat: 0 is
// the time run (ns), 2 the number of times it was scheduled in.
func benchSchedField(tids []int, i int) map[int]float64 {
	out := make(map[int]float64, len(tids))
	for _, tid := range tids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", tid))
		if err != nil {
			continue // a thread that ended
		}
		if f := strings.Fields(string(b)); len(f) > i {
			out[tid], _ = strconv.ParseFloat(f[i], 64)
		}
	}
	return out
}

// benchRuntimeSince is the CPU time (ns) tids ran since before was read;
// threads that started since count whole. (Threads that ended since are
// missed; stoad's do not end.)
func benchRuntimeSince(before map[int]float64, tids []int) float64 {
	var sum float64
	for tid, v := range benchRuntime(tids) {
		sum += v - before[tid]
	}
	return sum
}

var progIDRe = regexp.MustCompile(`prog/xdp id (\d+)`)

// benchXDPProgram opens the XDP program attached to dev in ns.
func benchXDPProgram(t *testing.T, ns *netnstest.NS, dev string) *ebpf.Program {
	t.Helper()
	m := progIDRe.FindStringSubmatch(ns.IP("link", "show", "dev", dev))
	if m == nil {
		t.Fatalf("no XDP program on %s", dev)
	}
	id, _ := strconv.ParseUint(m[1], 10, 32)
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		t.Fatalf("open program %d: %v", id, err)
	}
	return p
}

func benchMedian(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchMedianOf is the median of f over rs.
func benchMedianOf[T any](rs []T, f func(T) float64) float64 {
	v := make([]float64, len(rs))
	for i := range rs {
		v[i] = f(rs[i])
	}
	return benchMedian(v)
}

// benchRangeOf is the smallest and largest of f over rs.
func benchRangeOf[T any](rs []T, f func(T) float64) (lo, hi float64) {
	v := make([]float64, len(rs))
	for i := range rs {
		v[i] = f(rs[i])
	}
	return benchRange(v)
}

func benchRange(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	return slices.Min(v), slices.Max(v)
}

func benchLoadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func benchKernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
