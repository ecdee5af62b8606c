// etcdload: the etcd side of `python -m cluster.bench compare`.
//
// A closed-loop load generator over etcd's own Go client (clientv3, v3.4): N
// goroutines, each with one request in flight, spread over C gRPC connections.
// It prints one JSON object on stdout (count, errors, ops/s, latency percentiles,
// the CPU seconds this process used while measuring) and nothing else there.
//
// Why Go and not Python: a Python gRPC client costs more CPU per request than
// etcd does to serve it, so on a small machine it, not etcd, sets the figure.
//
// Built by cluster/bench/etcdtool.py with Debian's golang-go against Debian's
// golang-etcd-server-dev sources (GOPATH=/usr/share/gocode, GO111MODULE=off).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

// tlsConfig is nil for plaintext endpoints; with -cacert, a client TLS config that
// trusts only that CA's certificates (the servers'; no client certificate).
var tlsConfig *tls.Config

func loadCA(path string) *tls.Config {
	pem, err := os.ReadFile(path)
	if err != nil {
		fail("-cacert: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("-cacert: %s holds no PEM certificate", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// MeasuringLine goes to stderr when the measured window starts (after connecting and prefill).
const MeasuringLine = "etcdload: measuring"

type result struct {
	Workload  string             `json:"workload"`
	Clients   int                `json:"clients"`
	Conns     int                `json:"conns"`
	Target    string             `json:"target"`
	Count     int                `json:"count"`
	Ok        int                `json:"ok"`
	Errors    int                `json:"errors"`
	ErrorKind map[string]int     `json:"error_kinds"`
	ElapsedS  float64            `json:"elapsed_s"`
	OpsPerS   float64            `json:"ops_per_s"`
	LatencyMs map[string]float64 `json:"latency_ms"`
	CPUS      float64            `json:"cpu_s"`
}

type tally struct {
	latencies []time.Duration
	errors    map[string]int
	count     int
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcdload: "+format+"\n", args...)
	os.Exit(2)
}

// leaderEndpoint asks each endpoint for its status and returns the leader's.
func leaderEndpoint(endpoints []string, timeout time.Duration) (string, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: timeout, TLS: tlsConfig})
	if err != nil {
		return "", err
	}
	defer cli.Close()
	for _, ep := range endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Header != nil && st.Leader == st.Header.MemberId {
			return ep, nil
		}
	}
	return "", fmt.Errorf("no endpoint answered as leader")
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return float64(sorted[rank-1].Microseconds()) / 1000
}

func main() {
	workload := flag.String("workload", "put", "put | get | get-serializable | fill")
	firstKey := flag.Int64("first-key", 0, "fill: the first key index; the fill puts each key from it once, in order")
	clients := flag.Int("clients", 1, "concurrent requests (goroutines), each one in flight")
	conns := flag.Int("conns", 0, "gRPC connections shared by the clients (0: min(clients, 8))")
	ops := flag.Int("ops", 0, "operations in all (0: until -duration)")
	duration := flag.Float64("duration", 10, "seconds to measure (every run is bounded by it)")
	valueSize := flag.Int("value-size", 100, "value bytes")
	keys := flag.Int("keys", 1000, "key space")
	endpointsFlag := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	target := flag.String("target", "leader", "leader | all: where the clients send requests")
	timeout := flag.Float64("timeout", 5, "one operation's deadline (s)")
	prefill := flag.Bool("prefill", true, "read workloads: write every key once first (not measured)")
	cacert := flag.String("cacert", "", "TLS: the CA certificate (PEM) the servers' certificates chain to")
	flag.Parse()
	if *cacert != "" {
		tlsConfig = loadCA(*cacert)
	}

	if *workload != "put" && *workload != "get" && *workload != "get-serializable" && *workload != "fill" {
		fail("-workload must be put, get or get-serializable, got %q", *workload)
	}
	if *clients < 1 || *clients > 4096 || *duration <= 0 || *duration > 3600 || *keys < 1 || *valueSize < 0 {
		fail("bad -clients, -duration, -keys or -value-size")
	}
	if *conns <= 0 {
		*conns = *clients
		if *conns > 8 {
			*conns = 8
		}
	}
	endpoints := strings.Split(*endpointsFlag, ",")
	opTimeout := time.Duration(*timeout * float64(time.Second))
	if *target == "leader" {
		leader, err := leaderEndpoint(endpoints, 5*time.Second)
		if err != nil {
			fail("%v", err)
		}
		endpoints = []string{leader}
	} else if *target != "all" {
		fail("-target must be leader or all, got %q", *target)
	}

	// One client per connection; with -target all each starts at a different endpoint.
	cs := make([]*clientv3.Client, *conns)
	for i := range cs {
		eps := append(append([]string{}, endpoints[i%len(endpoints):]...), endpoints[:i%len(endpoints)]...)
		if *target == "all" {
			eps = eps[:1] // pinned: spread the serializable reads over every member
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, TLS: tlsConfig})
		if err != nil {
			fail("connect: %v", err)
		}
		defer cli.Close()
		cs[i] = cli
	}
	key := func(i int) string { return fmt.Sprintf("bench/%08d", i) }
	value := strings.Repeat("v", *valueSize)

	nextKey := *firstKey // fill: the next key index to put (shared by the clients)
	if *prefill && *workload != "put" && *workload != "fill" {
		var wg sync.WaitGroup
		for c := 0; c < *clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				cli := cs[c%len(cs)]
				for k := c; k < *keys; k += *clients {
					ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
					_, _ = cli.Put(ctx, key(k), value) // a missing key only makes a read cheaper
					cancel()
				}
			}(c)
		}
		wg.Wait()
	}

	var budget []int // per client; -1: until the deadline
	for c := 0; c < *clients; c++ {
		n := -1
		if *ops > 0 {
			n = *ops / *clients
			if c < *ops%*clients {
				n++
			}
		}
		budget = append(budget, n)
	}
	tallies := make([]*tally, *clients)
	// The parent reads this line to start its clock on etcd's own CPU.
	fmt.Fprintln(os.Stderr, MeasuringLine)
	start := time.Now()
	deadline := start.Add(time.Duration(*duration * float64(time.Second)))
	cpu0 := cpuSeconds()
	var wg sync.WaitGroup
	var lastMu sync.Mutex
	last := start
	for c := 0; c < *clients; c++ {
		t := &tally{errors: map[string]int{}}
		tallies[c] = t
		wg.Add(1)
		go func(c int, t *tally) {
			defer wg.Done()
			cli := cs[c%len(cs)]
			rng := rand.New(rand.NewSource(int64(c) + 1))
			var opts []clientv3.OpOption
			if *workload == "get-serializable" {
				opts = append(opts, clientv3.WithSerializable())
			}
			var end time.Time
			for n := 0; (budget[c] < 0 || n < budget[c]) && time.Now().Before(deadline); n++ {
				var k string
				if *workload == "fill" {
					k = key(int(atomic.AddInt64(&nextKey, 1) - 1))
				} else {
					k = key(rng.Intn(*keys))
				}
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				began := time.Now()
				var err error
				if *workload == "put" || *workload == "fill" {
					_, err = cli.Put(ctx, k, value)
				} else {
					_, err = cli.Get(ctx, k, opts...)
				}
				end = time.Now()
				cancel()
				t.count++
				if err != nil {
					t.errors[fmt.Sprintf("%T", err)]++
				} else {
					t.latencies = append(t.latencies, end.Sub(began))
				}
			}
			lastMu.Lock()
			if end.After(last) {
				last = end
			}
			lastMu.Unlock()
		}(c, t)
	}
	wg.Wait()
	cpu := cpuSeconds() - cpu0
	elapsed := last.Sub(start).Seconds()

	var all []time.Duration
	res := result{Workload: *workload, Clients: *clients, Conns: *conns, Target: *target, ErrorKind: map[string]int{}}
	for _, t := range tallies {
		all = append(all, t.latencies...)
		res.Count += t.count
		for k, v := range t.errors {
			res.ErrorKind[k] += v
			res.Errors += v
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.Ok = len(all)
	res.ElapsedS = elapsed
	if elapsed > 0 {
		res.OpsPerS = float64(res.Ok) / elapsed
	}
	res.LatencyMs = map[string]float64{
		"p50": percentile(all, 50), "p90": percentile(all, 90), "p99": percentile(all, 99),
		"p99.9": percentile(all, 99.9), "max": percentile(all, 100),
	}
	res.CPUS = cpu
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
