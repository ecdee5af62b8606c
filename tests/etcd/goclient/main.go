// goclient: etcd's own Go client (clientv3, v3.4) against given endpoints, for the
// tests of jangada's etcd face (tests/etcd/test_goclient*.py). The same program runs
// against a real etcd 3.4, so every check is first a statement about etcd.
//
// -mode checks (default): runs the named checks and prints one JSON line per check
// on stdout: {"check", "ok", "detail", "error", "elapsed_ms"}. The checks:
//
//	kv        Put, Get, Delete, Get of one key
//	txn       a compare-and-swap Txn twice: the first takes Then, the second Else
//	session   concurrency.NewSession (a lease kept alive) and its lease's TTL
//	mutex     concurrency.NewMutex on two sessions: the second Lock waits while the
//	          first holds the lock and returns only after the first Unlock
//	          (clientv3 3.4 has no Mutex.TryLock: it came in 3.5)
//	election  concurrency.NewElection: Campaign, Leader, Proclaim, Observe seeing
//	          each change, Resign handing leadership to a waiting campaigner
//
// The mutex and election checks use only KV, Watch and Lease: clientv3/concurrency
// never calls etcd's Lock or Election services.
//
// -mode load: a closed-loop put load over ONE client given every endpoint (the
// client balances and fails over itself), for -duration seconds. It writes
// "goclient: load running" on stderr once connected, then at the end one JSON
// object on stdout: ok counts per 100 ms (keyed by unix time in units of 100 ms)
// and every error's gRPC code and message, counted.
//
// Built offline by cluster/bench/compare/etcd.py's build_go_program (GOPATH mode
// against Debian's /usr/share/gocode, GO111MODULE=off).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	"google.golang.org/grpc/status"
)

// LoadRunningLine goes to stderr when the load starts (after connecting).
const LoadRunningLine = "goclient: load running"

type checkResult struct {
	Check     string  `json:"check"`
	Ok        bool    `json:"ok"`
	Detail    string  `json:"detail"`
	Error     string  `json:"error"`
	ElapsedMs float64 `json:"elapsed_ms"`
}

type config struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "goclient: "+format+"\n", args...)
	os.Exit(2)
}

func checkKV(c config) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	key := c.prefix + "kv"
	put, err := c.cli.Put(ctx, key, "v1")
	if err != nil {
		return "", fmt.Errorf("put: %v", err)
	}
	got, err := c.cli.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("get: %v", err)
	}
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v1" || got.Kvs[0].ModRevision != put.Header.Revision {
		return "", fmt.Errorf("get after put: %v (put at revision %d)", got.Kvs, put.Header.Revision)
	}
	del, err := c.cli.Delete(ctx, key, clientv3.WithPrevKV())
	if err != nil {
		return "", fmt.Errorf("delete: %v", err)
	}
	if del.Deleted != 1 || len(del.PrevKvs) != 1 || string(del.PrevKvs[0].Value) != "v1" {
		return "", fmt.Errorf("delete: deleted %d, prev %v", del.Deleted, del.PrevKvs)
	}
	gone, err := c.cli.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("get after delete: %v", err)
	}
	if len(gone.Kvs) != 0 || gone.Header.Revision != del.Header.Revision {
		return "", fmt.Errorf("get after delete: %v at revision %d", gone.Kvs, gone.Header.Revision)
	}
	return fmt.Sprintf("put at revision %d, deleted at %d", put.Header.Revision, del.Header.Revision), nil
}

func checkTxn(c config) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	key := c.prefix + "txn"
	if _, err := c.cli.Put(ctx, key, "a"); err != nil {
		return "", fmt.Errorf("put: %v", err)
	}
	swap := func() (*clientv3.TxnResponse, error) {
		return c.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.Value(key), "=", "a")).
			Then(clientv3.OpPut(key, "b"), clientv3.OpGet(key)).
			Else(clientv3.OpGet(key)).
			Commit()
	}
	first, err := swap()
	if err != nil {
		return "", fmt.Errorf("txn: %v", err)
	}
	if !first.Succeeded || len(first.Responses) != 2 {
		return "", fmt.Errorf("first txn: succeeded %v with %d responses", first.Succeeded, len(first.Responses))
	}
	if kvs := first.Responses[1].GetResponseRange().Kvs; len(kvs) != 1 || string(kvs[0].Value) != "b" {
		return "", fmt.Errorf("first txn's get: %v", kvs)
	}
	second, err := swap()
	if err != nil {
		return "", fmt.Errorf("second txn: %v", err)
	}
	if second.Succeeded || len(second.Responses) != 1 {
		return "", fmt.Errorf("second txn: succeeded %v with %d responses", second.Succeeded, len(second.Responses))
	}
	kvs := second.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 || string(kvs[0].Value) != "b" || kvs[0].Version != 2 {
		return "", fmt.Errorf("second txn's get: %v", kvs)
	}
	if second.Header.Revision != first.Header.Revision {
		return "", fmt.Errorf("a failed txn moved the revision: %d -> %d", first.Header.Revision, second.Header.Revision)
	}
	return fmt.Sprintf("then at revision %d, else at %d", first.Header.Revision, second.Header.Revision), nil
}

// newSession opens a session (a lease of ttl seconds, kept alive), bounded by
// c.timeout: NewSession itself has no deadline (its context also bounds the
// keep-alive, so it cannot be a timeout).
func newSession(c config, ttl int) (*concurrency.Session, error) {
	type opened struct {
		s   *concurrency.Session
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := concurrency.NewSession(c.cli, concurrency.WithTTL(ttl))
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		return o.s, o.err
	case <-time.After(c.timeout):
		return nil, fmt.Errorf("no session within %v", c.timeout)
	}
}

func checkSession(c config) (string, error) {
	s, err := newSession(c, 10)
	if err != nil {
		return "", fmt.Errorf("new session: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	ttl, err := c.cli.TimeToLive(ctx, s.Lease())
	if err != nil {
		return "", fmt.Errorf("time to live of lease %x: %v", s.Lease(), err)
	}
	if ttl.GrantedTTL != 10 || ttl.TTL <= 0 || ttl.TTL > 10 {
		return "", fmt.Errorf("lease %x: granted %d s, %d s left", s.Lease(), ttl.GrantedTTL, ttl.TTL)
	}
	return fmt.Sprintf("lease %x granted %d s, %d s left", s.Lease(), ttl.GrantedTTL, ttl.TTL), nil
}

// twoSessions opens the two contenders' sessions (TTL 10 s) of the mutex and
// election checks; the caller closes both.
func twoSessions(c config) (*concurrency.Session, *concurrency.Session, error) {
	s1, err := newSession(c, 10)
	if err != nil {
		return nil, nil, fmt.Errorf("first session: %v", err)
	}
	s2, err := newSession(c, 10)
	if err != nil {
		s1.Close()
		return nil, nil, fmt.Errorf("second session: %v", err)
	}
	return s1, s2, nil
}

func checkMutex(c config) (string, error) {
	s1, s2, err := twoSessions(c)
	if err != nil {
		return "", err
	}
	defer s1.Close()
	defer s2.Close()
	pfx := c.prefix + "mutex"
	m1, m2 := concurrency.NewMutex(s1, pfx), concurrency.NewMutex(s2, pfx)
	ctx, cancel := context.WithTimeout(context.Background(), 3*c.timeout)
	defer cancel()
	if err := m1.Lock(ctx); err != nil {
		return "", fmt.Errorf("first lock: %v", err)
	}
	acquired := make(chan error, 1)
	go func() { acquired <- m2.Lock(ctx) }()
	const held = 500 * time.Millisecond
	select {
	case err := <-acquired:
		return "", fmt.Errorf("second lock returned (%v) while the first held the lock", err)
	case <-time.After(held):
	}
	// The lock key is the session's lease under pfx, and Lock has written it.
	owner, err := c.cli.Get(ctx, pfx, clientv3.WithFirstCreate()...)
	if err != nil || len(owner.Kvs) != 1 || string(owner.Kvs[0].Key) != m1.Key() {
		return "", fmt.Errorf("owner of %s: %v (%v), want %s", pfx, owner, err, m1.Key())
	}
	unlocked := time.Now()
	if err := m1.Unlock(ctx); err != nil {
		return "", fmt.Errorf("first unlock: %v", err)
	}
	select {
	case err := <-acquired:
		if err != nil {
			return "", fmt.Errorf("second lock: %v", err)
		}
	case <-time.After(2 * c.timeout):
		return "", fmt.Errorf("second lock not acquired within %v of the first unlock", 2*c.timeout)
	}
	waited := time.Since(unlocked)
	if err := m2.Unlock(ctx); err != nil {
		return "", fmt.Errorf("second unlock: %v", err)
	}
	return fmt.Sprintf("second lock waited %v while held, acquired %v after the unlock", held,
		waited.Round(time.Millisecond)), nil
}

// nextValue waits for the observer's next leader value.
func nextValue(ch <-chan clientv3.GetResponse, within time.Duration) (string, error) {
	select {
	case resp, ok := <-ch:
		if !ok {
			return "", errors.New("observe channel closed")
		}
		if len(resp.Kvs) == 0 {
			return "", errors.New("observe: a response without a leader")
		}
		return string(resp.Kvs[0].Value), nil
	case <-time.After(within):
		return "", fmt.Errorf("observe: nothing within %v", within)
	}
}

func checkElection(c config) (string, error) {
	s1, s2, err := twoSessions(c)
	if err != nil {
		return "", err
	}
	defer s1.Close()
	defer s2.Close()
	pfx := c.prefix + "election"
	e1, e2 := concurrency.NewElection(s1, pfx), concurrency.NewElection(s2, pfx)
	ctx, cancel := context.WithTimeout(context.Background(), 3*c.timeout)
	defer cancel()
	if err := e1.Campaign(ctx, "one"); err != nil {
		return "", fmt.Errorf("campaign: %v", err)
	}
	leader, err := e2.Leader(ctx)
	if err != nil || len(leader.Kvs) != 1 || string(leader.Kvs[0].Value) != "one" ||
		string(leader.Kvs[0].Key) != e1.Key() {
		return "", fmt.Errorf("leader after campaign: %v (%v)", leader, err)
	}
	observer := concurrency.NewElection(s2, pfx).Observe(ctx)
	seen := []string{}
	expect := func(want string) error {
		got, err := nextValue(observer, c.timeout)
		if err != nil {
			return err
		}
		seen = append(seen, got)
		if got != want {
			return fmt.Errorf("observed %q, want %q (seen %v)", got, want, seen)
		}
		return nil
	}
	if err := expect("one"); err != nil {
		return "", err
	}
	if err := e1.Proclaim(ctx, "one-again"); err != nil {
		return "", fmt.Errorf("proclaim: %v", err)
	}
	if err := expect("one-again"); err != nil {
		return "", err
	}
	campaigned := make(chan error, 1)
	go func() { campaigned <- e2.Campaign(ctx, "two") }()
	select {
	case err := <-campaigned:
		return "", fmt.Errorf("second campaign returned (%v) while the first was leader", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := e1.Resign(ctx); err != nil {
		return "", fmt.Errorf("resign: %v", err)
	}
	select {
	case err := <-campaigned:
		if err != nil {
			return "", fmt.Errorf("second campaign: %v", err)
		}
	case <-time.After(2 * c.timeout):
		return "", fmt.Errorf("second campaign not elected within %v of the resignation", 2*c.timeout)
	}
	if err := expect("two"); err != nil {
		return "", err
	}
	leader, err = e1.Leader(ctx)
	if err != nil || len(leader.Kvs) != 1 || string(leader.Kvs[0].Value) != "two" {
		return "", fmt.Errorf("leader after resign: %v (%v)", leader, err)
	}
	if err := e2.Resign(ctx); err != nil {
		return "", fmt.Errorf("second resign: %v", err)
	}
	if _, err := e1.Leader(ctx); err != concurrency.ErrElectionNoLeader {
		return "", fmt.Errorf("leader after both resigned: %v, want %v", err, concurrency.ErrElectionNoLeader)
	}
	return fmt.Sprintf("observed %v", seen), nil
}

var checks = map[string]func(config) (string, error){
	"kv": checkKV, "txn": checkTxn, "session": checkSession, "mutex": checkMutex, "election": checkElection,
}

// errorKind: the gRPC code and message the client returned (etcd's own errors
// arrive as rpctypes.EtcdError, transport failures as a gRPC status, a deadline
// of ours as a context error).
func errorKind(err error) (string, string) {
	if ee, ok := err.(rpctypes.EtcdError); ok {
		return ee.Code().String(), ee.Error()
	}
	if st, ok := status.FromError(err); ok {
		return st.Code().String(), st.Message()
	}
	if err == context.DeadlineExceeded {
		return "DeadlineExceeded", err.Error()
	}
	return "Other", err.Error()
}

type loadResult struct {
	Ok         int              `json:"ok"`
	Errors     int              `json:"errors"`
	OkBy100ms  map[int64]int    `json:"ok_by_100ms"`
	ErrorKinds map[string]int   `json:"error_kinds"`
	ErrorFirst map[string]int64 `json:"error_first_ms"`
	StartMs    int64            `json:"start_ms"`
	EndMs      int64            `json:"end_ms"`
}

func load(cli *clientv3.Client, prefix string, clients int, duration, opTimeout time.Duration) loadResult {
	res := loadResult{OkBy100ms: map[int64]int{}, ErrorKinds: map[string]int{}, ErrorFirst: map[string]int64{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(duration)
	res.StartMs = start.UnixNano() / 1e6
	fmt.Fprintln(os.Stderr, LoadRunningLine)
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				_, err := cli.Put(ctx, fmt.Sprintf("%s%d/%d", prefix, g, n%100), "v")
				cancel()
				now := time.Now().UnixNano() / 1e6
				mu.Lock()
				if err == nil {
					res.Ok++
					res.OkBy100ms[now/100]++
				} else {
					code, msg := errorKind(err)
					kind := code + ": " + msg
					res.Errors++
					res.ErrorKinds[kind]++
					if _, seen := res.ErrorFirst[kind]; !seen {
						res.ErrorFirst[kind] = now
					}
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	res.EndMs = time.Now().UnixNano() / 1e6
	return res
}

func main() {
	mode := flag.String("mode", "checks", "checks | load")
	endpointsFlag := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	names := flag.String("checks", "kv,txn,session,mutex,election", "checks to run, in order")
	prefix := flag.String("prefix", fmt.Sprintf("goclient/%d/", time.Now().UnixNano()), "key prefix")
	timeout := flag.Float64("timeout", 5, "seconds one step of a check may take; a load's put deadline")
	clients := flag.Int("clients", 8, "load: concurrent puts")
	duration := flag.Float64("duration", 6, "load: seconds")
	flag.Parse()

	step := time.Duration(*timeout * float64(time.Second))
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpointsFlag, ","), DialTimeout: step})
	if err != nil {
		fail("connect: %v", err)
	}
	defer cli.Close()
	out := json.NewEncoder(os.Stdout)
	if *mode == "load" {
		if *clients < 1 || *duration <= 0 {
			fail("bad -clients or -duration")
		}
		_ = out.Encode(load(cli, *prefix, *clients, time.Duration(*duration*float64(time.Second)), step))
		return
	}
	if *mode != "checks" {
		fail("-mode must be checks or load, got %q", *mode)
	}
	c := config{cli: cli, prefix: *prefix, timeout: step}
	for _, name := range strings.Split(*names, ",") {
		check, known := checks[name]
		if !known {
			fail("unknown check %q", name)
		}
		began := time.Now()
		detail, err := check(c)
		r := checkResult{Check: name, Ok: err == nil, Detail: detail,
			ElapsedMs: float64(time.Since(began).Microseconds()) / 1000}
		if err != nil {
			r.Error = err.Error()
		}
		_ = out.Encode(r)
	}
}
