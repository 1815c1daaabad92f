package torch

/*
#include "../csrc/lvshim.h"
*/
import "C"

import "runtime"

// Generator is a seeded libtorch CPU random generator (Philox/MT as libtorch's
// CPU default). Draws from one generator are reproducible; it is not safe for
// concurrent use by several goroutines.
type Generator struct {
	h C.lt_gen
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed uint64) (*Generator, error) {
	var h C.lt_gen
	if err := cerr("generator", C.lt_gen_new(C.uint64_t(seed), &h)); err != nil {
		return nil, err
	}
	g := &Generator{h: h}
	runtime.SetFinalizer(g, func(g *Generator) { g.Close() })
	return g, nil
}

// Close frees the generator.
func (g *Generator) Close() {
	if g == nil || g.h == nil {
		return
	}
	C.lt_gen_free(g.h)
	g.h = nil
	runtime.SetFinalizer(g, nil)
}

func (g *Generator) handle() C.lt_gen {
	if g == nil {
		return nil
	}
	return g.h
}

// closedErr returns an error tensor when g was closed (a nil g means the
// global generator and is fine), so that draws never fall back silently.
func (g *Generator) closedErr(op string) *Tensor {
	if g != nil && g.h == nil {
		return errT(&Error{Op: op, Msg: "generator was closed"}, nil)
	}
	return nil
}

// State returns the generator state as a uint8 tensor (caller frees).
func (g *Generator) State() *Tensor {
	if g == nil || g.h == nil {
		return errT(&Error{Op: "get_state", Msg: "nil or closed generator"}, nil)
	}
	t := callIn(nil, "get_state", func(out *C.lt_tensor) C.lt_err { return C.lt_gen_get_state(g.h, out) })
	runtime.KeepAlive(g)
	return t
}

// SetState restores a state from State.
func (g *Generator) SetState(st *Tensor) error {
	if g == nil || g.h == nil {
		return &Error{Op: "set_state", Msg: "nil or closed generator"}
	}
	if err := st.Err(); err != nil {
		return err
	}
	err := cerr("set_state", C.lt_gen_set_state(g.h, st.h))
	runtime.KeepAlive(g)
	runtime.KeepAlive(st)
	return err
}

// ManualSeed seeds libtorch's global generator.
func ManualSeed(seed uint64) error { return cerr("manual_seed", C.lt_manual_seed(C.uint64_t(seed))) }

// Rand draws uniform [0,1) float32 values.
func Rand(s *Scope, g *Generator, shape ...int64) *Tensor {
	if e := g.closedErr("rand"); e != nil {
		return e
	}
	t := callIn(s, "rand", func(out *C.lt_tensor) C.lt_err {
		return C.lt_rand(g.handle(), i64ptr(shape), C.int(len(shape)), C.int(Float32), out)
	})
	runtime.KeepAlive(g)
	return t
}

// Randn draws standard normal float32 values.
func Randn(s *Scope, g *Generator, shape ...int64) *Tensor {
	if e := g.closedErr("randn"); e != nil {
		return e
	}
	t := callIn(s, "randn", func(out *C.lt_tensor) C.lt_err {
		return C.lt_randn(g.handle(), i64ptr(shape), C.int(len(shape)), C.int(Float32), out)
	})
	runtime.KeepAlive(g)
	return t
}

// Randperm returns a random permutation of 0..n-1 (int64).
func Randperm(s *Scope, g *Generator, n int64) *Tensor {
	if e := g.closedErr("randperm"); e != nil {
		return e
	}
	t := callIn(s, "randperm", func(out *C.lt_tensor) C.lt_err { return C.lt_randperm(g.handle(), C.int64_t(n), out) })
	runtime.KeepAlive(g)
	return t
}

// Beta draws Beta(a, b) float32 values, as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).
func Beta(s *Scope, g *Generator, a, b float64, shape ...int64) *Tensor {
	if e := g.closedErr("beta"); e != nil {
		return e
	}
	ga := Full(nil, a, Float32, CPU, shape...)
	gb := Full(nil, b, Float32, CPU, shape...)
	defer ga.Free()
	defer gb.Free()
	x := call("standard_gamma", func(out *C.lt_tensor) C.lt_err { return C.lt_standard_gamma(g.handle(), ga.h, out) }, ga)
	y := call("standard_gamma", func(out *C.lt_tensor) C.lt_err { return C.lt_standard_gamma(g.handle(), gb.h, out) }, gb)
	defer x.Free()
	defer y.Free()
	sum := x.Add(y)
	defer sum.Free()
	runtime.KeepAlive(g)
	return x.Div(sum).In(s)
}

// Bernoulli draws 0/1 values with probabilities p (same shape and type as p).
func Bernoulli(g *Generator, p *Tensor) *Tensor {
	if e := g.closedErr("bernoulli"); e != nil {
		return e
	}
	t := call("bernoulli", func(out *C.lt_tensor) C.lt_err { return C.lt_bernoulli(g.handle(), p.h, out) }, p)
	runtime.KeepAlive(g)
	return t
}
