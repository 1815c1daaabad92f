package torch

/*
#include "../csrc/lvshim.h"
*/
import "C"

import "runtime"

// SetRequiresGrad marks a leaf tensor as a parameter whose gradient autograd
// accumulates. It returns t.
func (t *Tensor) SetRequiresGrad(on bool) *Tensor {
	if t.Err() != nil {
		return t
	}
	if err := cerr("requires_grad_", C.lt_set_requires_grad(t.h, cbool(on))); err != nil {
		return errT(err, nil)
	}
	runtime.KeepAlive(t)
	return t
}

// RequiresGrad reports whether autograd tracks t.
func (t *Tensor) RequiresGrad() bool {
	if t.Err() != nil {
		return false
	}
	defer runtime.KeepAlive(t)
	return C.lt_requires_grad(t.h) != 0
}

// Backward computes gradients of t (a scalar) with respect to every leaf that
// requires them, accumulating into their Grad. The graph is freed.
func (t *Tensor) Backward() error { return t.BackwardWith(nil, false) }

// BackwardWith is Backward with an explicit output gradient (nil: ones) and
// the option to keep the graph for a second pass.
func (t *Tensor) BackwardWith(grad *Tensor, retainGraph bool) error {
	if grad != nil {
		if _, err := pick(t, grad); err != nil {
			return err
		}
	} else if err := t.Err(); err != nil {
		return err
	}
	var gh C.lt_tensor
	if grad != nil {
		gh = grad.h
	}
	err := cerr("backward", C.lt_backward(t.h, gh, cbool(retainGraph)))
	runtime.KeepAlive(t)
	runtime.KeepAlive(grad)
	return err
}

// Grad returns the accumulated gradient of a leaf (nil, without error, when
// none has been computed). The handle is new: it joins t's scope, or the
// caller frees it.
func (t *Tensor) Grad() *Tensor {
	if err := t.Err(); err != nil {
		return errT(err, nil)
	}
	var out C.lt_tensor
	err := cerr("grad", C.lt_grad(t.h, &out))
	runtime.KeepAlive(t)
	if err != nil {
		return errT(err, nil)
	}
	if out == nil {
		return nil
	}
	return newT(out, t.scope)
}

// ZeroGrad drops the accumulated gradient (as optimizer.zero_grad(set_to_none=True)).
func (t *Tensor) ZeroGrad() error {
	if err := t.Err(); err != nil {
		return err
	}
	err := cerr("zero_grad", C.lt_zero_grad(t.h))
	runtime.KeepAlive(t)
	return err
}

// NoGrad runs f with autograd recording off. Grad mode is per OS thread, so f
// runs with its goroutine pinned to the current thread; tensors made inside
// carry no graph. Goroutines started by f do not inherit the mode.
func NoGrad(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.lt_grad_enabled()
	C.lt_set_grad_enabled(0)
	defer C.lt_set_grad_enabled(prev)
	return f()
}

// InferenceMode runs f in libtorch's inference mode (no autograd, no version
// counters: faster than NoGrad). Tensors made inside must not be used in
// autograd later. The goroutine is pinned like NoGrad.
func InferenceMode(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	g := C.lt_inference_mode_enter()
	defer C.lt_inference_mode_exit(g)
	return f()
}

// GradEnabled reports the grad mode of the current OS thread (meaningful
// inside NoGrad, or with the goroutine otherwise pinned).
func GradEnabled() bool { return C.lt_grad_enabled() != 0 }

// Pinned runs f with its goroutine locked to one OS thread. Build a graph and
// call Backward inside one Pinned call when gradients must be reproducible
// bit for bit: autograd orders ready nodes by sequence numbers that libtorch
// counts per OS thread, and Go moves goroutines between threads, so a graph
// built across threads may sum the gradients of a tensor with several
// consumers in a different order (a rounding-level difference) from run to
// run.
func Pinned(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return f()
}
