package torch

/*
#include <stdlib.h>
#include "../csrc/lvshim.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Store is a client of (or, on the rank that hosts it, the server of)
// libtorch's c10d TCPStore: the key-value store through which the ranks of a
// distributed job meet, as torchrun's and torch.distributed's rendezvous do.
// Its methods are safe for concurrent use (calls are serialised).
type Store struct {
	mu sync.Mutex
	h  C.lt_store
}

// NewStore connects to the TCPStore at host:port, or hosts it (server: one
// rank, usually rank 0, listening on port) and waits until world clients
// joined. Every wait, here and in Get, gives up after timeout.
func NewStore(host string, port, world int, server bool, timeout time.Duration) (*Store, error) {
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var h C.lt_store
	if err := cerr("store", C.lt_store_new(ch, C.int(port), C.int(world), cbool(server), C.int64_t(timeout.Milliseconds()), &h)); err != nil {
		return nil, err
	}
	s := &Store{h: h}
	runtime.SetFinalizer(s, (*Store).Close)
	return s, nil
}

// Close disconnects (the server stops serving).
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		C.lt_store_free(s.h)
		s.h = nil
	}
}

func (s *Store) handle(op string) (C.lt_store, error) {
	if s == nil || s.h == nil {
		return nil, &Error{Op: op, Msg: "store is closed"}
	}
	return s.h, nil
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.handle("store set")
	if err != nil {
		return err
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	if len(value) > 0 {
		p = C.CBytes(value)
		defer C.free(p)
	}
	return cerr("store set "+key, C.lt_store_set(h, ck, p, C.int64_t(len(value))))
}

// Get returns the value of key, waiting (up to the store's timeout) until
// some rank sets it.
func (s *Store) Get(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.handle("store get")
	if err != nil {
		return nil, err
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	var n C.int64_t
	if err := cerr("store get "+key, C.lt_store_get(h, ck, &p, &n)); err != nil {
		return nil, err
	}
	defer C.free(p)
	return C.GoBytes(p, C.int(n)), nil
}

// Add adds delta to the counter under key and returns its new value.
func (s *Store) Add(key string, delta int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.handle("store add")
	if err != nil {
		return 0, err
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v C.int64_t
	err = cerr("store add "+key, C.lt_store_add(h, ck, C.int64_t(delta), &v))
	return int64(v), err
}

// Check reports whether key is set, without waiting.
func (s *Store) Check(key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.handle("store check")
	if err != nil {
		return false, err
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v C.int
	err = cerr("store check "+key, C.lt_store_check(h, ck, &v))
	return v != 0, err
}

// Backend names a c10d process group implementation.
type Backend int

const (
	Gloo Backend = iota // CPU tensors (and CUDA, slowly), TCP
	NCCL                // CUDA tensors; CUDA builds of the shim with NCCL=1
)

func (b Backend) String() string {
	if b == NCCL {
		return "nccl"
	}
	return "gloo"
}

// GroupOptions configure a process group.
type GroupOptions struct {
	Backend Backend
	Timeout time.Duration // every collective fails after this long
	// Gloo: Interface (e.g. "eth0"; GLOO_SOCKET_IFNAME) or Host (an address
	// of this machine) picks the network device; neither: the machine's
	// hostname, as torch.distributed does. Threads: Gloo's worker threads
	// (0: its default).
	Interface, Host string
	Threads         int
}

// Group is a c10d process group: the ranks of one job and the collectives
// between them. Collectives must be called in the same order on every rank.
type Group struct {
	h           C.lt_pg
	rank, world int
	backend     Backend
}

// NewGroup makes this rank's process group, meeting the others through s.
func NewGroup(s *Store, rank, world int, o GroupOptions) (*Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, err := s.handle("process group")
	if err != nil {
		return nil, err
	}
	ci, ch := C.CString(o.Interface), C.CString(o.Host)
	defer C.free(unsafe.Pointer(ci))
	defer C.free(unsafe.Pointer(ch))
	var h C.lt_pg
	if err := cerr("process group "+o.Backend.String(), C.lt_pg_new(sh, C.int(o.Backend), C.int(rank), C.int(world),
		C.int64_t(o.Timeout.Milliseconds()), ci, ch, C.int(o.Threads), &h)); err != nil {
		return nil, err
	}
	g := &Group{h: h, rank: rank, world: world, backend: o.Backend}
	runtime.SetFinalizer(g, (*Group).Close)
	return g, nil
}

// Close frees the process group.
func (g *Group) Close() {
	if g.h != nil {
		C.lt_pg_free(g.h)
		g.h = nil
	}
}

// Rank and World return this rank and the number of ranks.
func (g *Group) Rank() int  { return g.rank }
func (g *Group) World() int { return g.world }

// Backend returns the group's backend.
func (g *Group) Backend() Backend { return g.backend }

func (g *Group) call(op string, ts []*Tensor, f func(hs []C.lt_tensor) C.lt_err) error {
	if g == nil || g.h == nil {
		return &Error{Op: op, Msg: "process group is closed"}
	}
	hs, err := handles(op, ts)
	if err != nil {
		return err
	}
	err = cerr(op, f(hs))
	runtime.KeepAlive(ts)
	return err
}

// AllReduce replaces each tensor by its sum over the ranks (avg: the mean).
func (g *Group) AllReduce(avg bool, ts ...*Tensor) error {
	return g.call("all_reduce", ts, func(hs []C.lt_tensor) C.lt_err {
		return C.lt_allreduce(g.h, &hs[0], C.int(len(hs)), cbool(avg))
	})
}

// Broadcast copies root's tensors into the other ranks' tensors (same shapes
// and types), coalesced into few messages.
func (g *Group) Broadcast(root int, ts ...*Tensor) error {
	return g.call("broadcast", ts, func(hs []C.lt_tensor) C.lt_err {
		return C.lt_broadcast(g.h, &hs[0], C.int(len(hs)), C.int(root))
	})
}

// Barrier returns when every rank has called it.
func (g *Group) Barrier() error {
	if g == nil || g.h == nil {
		return &Error{Op: "barrier", Msg: "process group is closed"}
	}
	return cerr("barrier", C.lt_barrier(g.h))
}

// AllReduceSum is a differentiable sum of x over the ranks: its gradient is
// the sum of the ranks' gradients (torch.distributed.nn.all_reduce).
func (g *Group) AllReduceSum(x *Tensor) *Tensor {
	if g == nil || g.h == nil {
		return errT(&Error{Op: "all_reduce", Msg: "process group is closed"}, x.scope)
	}
	return call("all_reduce", func(out *C.lt_tensor) C.lt_err { return C.lt_allreduce_autograd(g.h, x.h, out) }, x)
}

// Reducer is c10d's gradient reducer, the engine of PyTorch's
// DistributedDataParallel: it hooks the parameters' gradient accumulators,
// packs gradients into buckets as the backward pass produces them, and
// all-reduces (averages) each full bucket while the backward pass goes on.
// After the backward pass every rank's parameters hold the averaged
// gradients.
type Reducer struct {
	h       C.lt_reducer
	buckets int
	group   *Group
}

// NewReducer attaches a reducer to params (leaf tensors that require grad,
// the same list in the same order on every rank) with buckets of at most
// bucketBytes (DDP's default: 25 MiB). findUnused makes it look for
// parameters the loss does not reach (slower; needed only when some
// parameters get no gradient).
func NewReducer(g *Group, params []*Tensor, bucketBytes int64, findUnused bool) (*Reducer, error) {
	var r *Reducer
	err := g.call("reducer", params, func(hs []C.lt_tensor) C.lt_err {
		var h C.lt_reducer
		var nb C.int
		e := C.lt_reducer_new(g.h, &hs[0], C.int(len(hs)), C.int64_t(bucketBytes), cbool(findUnused), &h, &nb)
		if e == nil {
			r = &Reducer{h: h, buckets: int(nb), group: g}
		}
		return e
	})
	if err != nil {
		return nil, err
	}
	runtime.SetFinalizer(r, (*Reducer).Close)
	return r, nil
}

// Buckets returns the number of gradient buckets.
func (r *Reducer) Buckets() int { return r.buckets }

// Prepare arms the reducer for the next backward pass of a training step;
// call it after the forward pass, before the backward pass (outputs: the
// loss, from which findUnused looks for the parameters it does not reach).
func (r *Reducer) Prepare(outputs ...*Tensor) error {
	if r == nil || r.h == nil {
		return &Error{Op: "reducer", Msg: "reducer is closed"}
	}
	var hs []C.lt_tensor
	for _, t := range outputs {
		if err := t.Err(); err != nil {
			return err
		}
		hs = append(hs, t.h)
	}
	var p *C.lt_tensor
	if len(hs) > 0 {
		p = &hs[0]
	}
	err := cerr("reducer", C.lt_reducer_prepare(r.h, p, C.int(len(hs))))
	runtime.KeepAlive(outputs)
	return err
}

// Close detaches the reducer.
func (r *Reducer) Close() {
	if r.h != nil {
		C.lt_reducer_free(r.h)
		r.h = nil
	}
}
