// Package torch is the project's tensor engine: Go over libtorch (PyTorch's C++
// library) through the C API in ../csrc (lvshim.h).
//
// Tensors are handles to libtorch tensors. Operations never panic on bad input:
// a failed operation returns a Tensor that carries the error ("sticky" error),
// every later operation on it returns that same error, and Err, the data export
// methods and Item report it. One check at the end of a computation is enough:
//
//	s := torch.NewScope()
//	defer s.Close()                       // frees every tensor made in the scope
//	x := torch.FromSlice(s, data, 1, 3, 299, 299)
//	y := x.Conv2d(w, nil, torch.Conv{Stride: torch.Sq(2), Padding: torch.Sq(1)}).Relu()
//	if err := y.Err(); err != nil { ... } // libtorch's message, with the op name
//
// (Example, in example_test.go, is this code compiled and run.)
//
// Memory: a tensor made from operands that belong to a Scope joins that scope;
// tensors made without one (model parameters) live until Free. A finalizer
// frees forgotten tensors as a safety net only.
//
// Threads: intra-op threads default to the number of CPUs (LVNET_THREADS
// overrides); the setting is applied on every OS thread that calls libtorch.
package torch

/*
#cgo CXXFLAGS: -std=c++17
#cgo LDFLAGS: -L${SRCDIR}/../build -llvshim -ltorch_cpu -lc10 -lstdc++ -lmvec -lm
#include <stdlib.h>
#include "../csrc/lvshim.h"
*/
import "C"

import (
	"unsafe"
)

// Error is a failure reported by libtorch (or by argument checks of this
// package), with the operation that failed.
type Error struct {
	Op  string
	Msg string
	// Cause is the error this one wraps (Errorf's %w); nil for libtorch's own.
	Cause error
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// Unwrap returns the cause (errors.Is and errors.As look through it).
func (e *Error) Unwrap() error { return e.Cause }

// cerr converts a shim error (malloc'ed C string or nil) into a Go error.
func cerr(op string, p C.lt_err) error {
	if p == nil {
		return nil
	}
	msg := C.GoString(p)
	C.free(unsafe.Pointer(p))
	return &Error{Op: op, Msg: msg}
}

func i64ptr(s []int64) *C.int64_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0]))
}
