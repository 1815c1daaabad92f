// Package dist runs LVNet's data-parallel jobs over libtorch's c10d, the way
// PyTorch's DistributedDataParallel runs under torchrun: workers are
// configured by the environment torchrun (or a Kubeflow PyTorchJob, or an
// srun wrapper) sets — RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT — and meet through a TCPStore hosted by rank 0; gradients are
// averaged by c10d's Reducer over a Gloo (CPU) or NCCL (GPU) process group
// (see package train).
//
// On top of c10d it adds what keeps a job honest and debuggable: every rank
// checks at the start that the others run the same configuration and data
// (hashes exchanged through the store), every rank publishes a heartbeat
// with its step, so that a failed collective is reported with the rank that
// died or hung, and Launch starts N local workers (lvnet train
// --nproc-per-node N) and stops them all when one fails.
package dist

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvnet-go/lvnet/torch"
)

// Env is a worker's place in the job, as torchrun describes it.
type Env struct {
	Rank, World, LocalRank int
	Addr                   string // MASTER_ADDR: the host of rank 0's store
	Port                   int    // MASTER_PORT
	// AgentStore: torchrun's agent already serves the store at Addr:Port
	// (TORCHELASTIC_USE_AGENT_STORE=True), so rank 0 connects to it too.
	AgentStore bool
}

// Distributed reports whether the job has more than one rank.
func (e Env) Distributed() bool { return e.World > 1 }

// FromEnv reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT
// through getenv (os.Getenv). Without WORLD_SIZE the job is one process
// (World 1). MASTER_ADDR defaults to 127.0.0.1 and MASTER_PORT to 29500,
// as torch.distributed's.
func FromEnv(getenv func(string) string) (Env, error) {
	e := Env{World: 1, Addr: "127.0.0.1", Port: 29500}
	num := func(key string, dst *int) error {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("dist: %s=%q is not a non-negative integer", key, v)
		}
		*dst = n
		return nil
	}
	for _, kv := range []struct {
		key string
		dst *int
	}{{"WORLD_SIZE", &e.World}, {"RANK", &e.Rank}, {"LOCAL_RANK", &e.LocalRank}, {"MASTER_PORT", &e.Port}} {
		if err := num(kv.key, kv.dst); err != nil {
			return e, err
		}
	}
	if a := strings.TrimSpace(getenv("MASTER_ADDR")); a != "" {
		e.Addr = a
	}
	e.AgentStore = strings.EqualFold(strings.TrimSpace(getenv("TORCHELASTIC_USE_AGENT_STORE")), "true")
	switch {
	case e.World < 1:
		return e, fmt.Errorf("dist: WORLD_SIZE=%d: need at least 1", e.World)
	case e.Rank >= e.World:
		return e, fmt.Errorf("dist: RANK=%d is outside WORLD_SIZE=%d (ranks are 0..%d)", e.Rank, e.World, e.World-1)
	case e.Port < 1 || e.Port > 65535:
		return e, fmt.Errorf("dist: MASTER_PORT=%d is not a TCP port", e.Port)
	}
	return e, nil
}

// Options configure Join.
type Options struct {
	Backend torch.Backend
	// Timeout bounds the rendezvous and every collective: a rank that died
	// or hangs makes the others fail after at most this long.
	Timeout time.Duration
	// Heartbeat is how often each rank publishes its step (default 1 s).
	Heartbeat time.Duration
	// GlooThreads is Gloo's worker threads per rank (0: its default).
	GlooThreads int
	// Getenv reads GLOO_SOCKET_IFNAME (default os.Getenv).
	Getenv func(string) string
	// Device holds the tensors of the job's own collectives (NCCL reduces
	// CUDA tensors only).
	Device torch.Device
}

// Job is this rank's membership of a distributed job.
type Job struct {
	Env
	Store *torch.Store
	Group *torch.Group

	device        torch.Device
	timeout, beat time.Duration
	hb            *torch.Store // the heartbeat's own connection
	step          atomic.Int64
	seq           atomic.Int64 // keys of BroadcastBytes
	published     atomic.Int64 // when the heartbeat was last published (Unix ms)
	done          chan struct{}
	wg            sync.WaitGroup
}

// Join meets the other ranks: rank 0 hosts the TCPStore at Addr:Port and
// every rank connects, then the process group forms. It fails (naming the
// address) when not all World ranks arrive within the timeout.
func Join(e Env, o Options) (*Job, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	where := net.JoinHostPort(e.Addr, strconv.Itoa(e.Port))
	store, err := torch.NewStore(e.Addr, e.Port, e.World, e.Rank == 0 && !e.AgentStore, o.Timeout)
	if err != nil {
		return nil, fmt.Errorf("dist: rank %d of %d: rendezvous at %s (MASTER_ADDR:MASTER_PORT) within %v: %w", e.Rank, e.World, where, o.Timeout, err)
	}
	gopt := torch.GroupOptions{Backend: o.Backend, Timeout: o.Timeout, Threads: o.GlooThreads,
		Interface: o.Getenv("GLOO_SOCKET_IFNAME")}
	if gopt.Interface == "" && isLoopback(e.Addr) {
		gopt.Host = "127.0.0.1" // every rank on this machine
	}
	group, err := torch.NewGroup(store, e.Rank, e.World, gopt)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("dist: rank %d of %d: %s process group: %w", e.Rank, e.World, o.Backend, err)
	}
	hb, err := torch.NewStore(e.Addr, e.Port, e.World, false, o.Heartbeat*5)
	if err != nil {
		group.Close()
		store.Close()
		return nil, fmt.Errorf("dist: rank %d: heartbeat connection to %s: %w", e.Rank, where, err)
	}
	j := &Job{Env: e, Store: store, Group: group, device: o.Device, timeout: o.Timeout, beat: o.Heartbeat, hb: hb, done: make(chan struct{})}
	j.step.Store(-1)
	j.publish()
	j.wg.Add(1)
	go j.heartbeat()
	return j, nil
}

func isLoopback(addr string) bool {
	if addr == "localhost" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// Timeout returns the job's collective timeout.
func (j *Job) Timeout() time.Duration { return j.timeout }

// Progress records the step this rank has finished; it is published at
// once when the last heartbeat is older than a quarter period, else with
// the next.
func (j *Job) Progress(step int) {
	j.step.Store(int64(step))
	if time.Since(time.UnixMilli(j.published.Load())) > j.beat/4 {
		j.publish()
	}
}

func (j *Job) publish() {
	j.published.Store(time.Now().UnixMilli())
	v := fmt.Sprintf("%d %d", j.step.Load(), time.Now().UnixMilli())
	_ = j.hb.Set(fmt.Sprintf("lvnet/hb/%d", j.Rank), []byte(v))
}

func (j *Job) heartbeat() {
	defer j.wg.Done()
	t := time.NewTicker(j.beat)
	defer t.Stop()
	for {
		select {
		case <-j.done:
			return
		case <-t.C:
			j.publish()
		}
	}
}

// Close leaves the job (rank 0 stops serving the store: call it last on
// rank 0, after a final Barrier).
func (j *Job) Close() {
	select {
	case <-j.done:
		return
	default:
	}
	close(j.done)
	j.wg.Wait()
	j.hb.Close()
	j.Group.Close()
	j.Store.Close()
}

// Agree checks that every rank holds the same value of what (its SHA-256 is
// exchanged through the store) and names the ranks that differ from rank 0.
func (j *Job) Agree(what string, value []byte) error {
	sum := sha256.Sum256(value)
	mine := hex.EncodeToString(sum[:])
	if err := j.Store.Set(fmt.Sprintf("lvnet/agree/%s/%d", what, j.Rank), []byte(mine)); err != nil {
		return j.Explain(fmt.Errorf("dist: publish the %s hash: %w", what, err))
	}
	hashes := make([]string, j.World)
	for r := range hashes {
		v, err := j.Store.Get(fmt.Sprintf("lvnet/agree/%s/%d", what, r))
		if err != nil {
			return j.Explain(fmt.Errorf("dist: rank %d's %s hash: %w", r, what, err))
		}
		hashes[r] = string(v)
	}
	var differ []string
	for r, h := range hashes {
		if h != hashes[0] {
			differ = append(differ, strconv.Itoa(r))
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("dist: rank(s) %s run a different %s than rank 0 (hash %.12s vs %.12s); every rank must be started with the same configuration and data",
			strings.Join(differ, ", "), what, hashes[mustAtoi(differ[0])], hashes[0])
	}
	return nil
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }

// RankError is a failed collective, explained: which ranks died (no
// heartbeat), which hung (alive but not taking part), which failed too.
type RankError struct {
	Rank  int    // this rank
	Dead  []int  // no heartbeat for several periods (or the store itself is gone: rank 0)
	Hung  []int  // heartbeat alive, behind this rank's step or silent
	Cause error  // the collective's error
	Info  string // per-rank details
}

func (e *RankError) Error() string {
	var parts []string
	if len(e.Dead) > 0 {
		parts = append(parts, "rank "+ints(e.Dead)+" died")
	}
	if len(e.Hung) > 0 {
		parts = append(parts, "rank "+ints(e.Hung)+" stopped responding (hung)")
	}
	what := strings.Join(parts, "; ")
	if what == "" {
		what = "a collective failed"
	}
	msg := fmt.Sprintf("dist: rank %d: %s", e.Rank, what)
	if e.Info != "" {
		msg += " (" + e.Info + ")"
	}
	return msg + ": " + e.Cause.Error()
}

func (e *RankError) Unwrap() error { return e.Cause }

func ints(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// Explain turns a failed collective (or store call) into a RankError naming
// the ranks responsible, from their heartbeats: a rank whose heartbeat
// stopped died; a rank that is alive but has not reached this rank's step,
// and has not failed itself, hung. Other errors pass through unchanged.
func (j *Job) Explain(err error) error {
	var te *torch.Error
	if err == nil || !errors.As(err, &te) {
		return err
	}
	var re *RankError
	if errors.As(err, &re) {
		return err
	}
	_ = j.hb.Set(fmt.Sprintf("lvnet/failed/%d", j.Rank), []byte(strconv.FormatInt(j.step.Load(), 10)))
	// Give the other survivors a moment to fail too, and a dead rank's
	// heartbeat time to go stale (more than 3 periods old).
	time.Sleep(5 * j.beat)
	re = &RankError{Rank: j.Rank, Cause: err}
	mine := j.step.Load()
	var info []string
	for r := 0; r < j.World; r++ {
		if r == j.Rank {
			continue
		}
		ok, cerr := j.hb.Check(fmt.Sprintf("lvnet/hb/%d", r))
		if cerr != nil {
			// The store lives in rank 0: unreachable means rank 0 is gone.
			re.Dead = []int{0}
			info = []string{"the store on rank 0 is unreachable"}
			break
		}
		if !ok {
			re.Dead = append(re.Dead, r)
			continue
		}
		v, gerr := j.hb.Get(fmt.Sprintf("lvnet/hb/%d", r))
		var step, ms int64
		if gerr == nil {
			fmt.Sscanf(string(v), "%d %d", &step, &ms)
		}
		age := time.Since(time.UnixMilli(ms))
		failed, _ := j.hb.Check(fmt.Sprintf("lvnet/failed/%d", r))
		switch {
		case gerr != nil || age > 3*j.beat:
			re.Dead = append(re.Dead, r)
			info = append(info, fmt.Sprintf("rank %d: last heartbeat %.0fs ago at step %d", r, age.Seconds(), step))
		case failed:
			// A survivor like this one.
		default:
			re.Hung = append(re.Hung, r)
			info = append(info, fmt.Sprintf("rank %d: alive at step %d, this rank at %d", r, step, mine))
		}
	}
	re.Info = strings.Join(info, "; ")
	return re
}

// BroadcastBytes sends rank 0's b to every rank (its length through the
// store, the bytes through the process group) and returns it.
func (j *Job) BroadcastBytes(b []byte) ([]byte, error) {
	key := fmt.Sprintf("lvnet/bytes/%d", j.seq.Add(1))
	if j.Rank == 0 {
		if err := j.Store.Set(key, []byte(strconv.Itoa(len(b)))); err != nil {
			return nil, err
		}
	}
	v, err := j.Store.Get(key)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return nil, fmt.Errorf("dist: bad length %q under %s", v, key)
	}
	if j.Rank != 0 {
		b = make([]byte, n)
	}
	if n == 0 {
		return b, nil
	}
	s := torch.NewScope()
	defer s.Close()
	t := torch.FromSlice(s, b, int64(n)).ToDevice(j.device)
	if err := j.Group.Broadcast(0, t); err != nil {
		return nil, err
	}
	return torch.Data[uint8](t.ToDevice(torch.CPU))
}
