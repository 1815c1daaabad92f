package torch

/*
#include <stdlib.h>
#include "../csrc/lvshim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Tensor is a handle to a libtorch tensor, or an error (see the package doc).
// The zero value and nil are invalid tensors; methods on nil return an error
// tensor rather than panicking.
type Tensor struct {
	h     C.lt_tensor
	err   error
	scope *Scope
}

// Scope owns the tensors created inside one unit of work (a training step, a
// batch) and frees them all on Close. A Scope may be shared by goroutines.
type Scope struct {
	mu sync.Mutex
	ts []*Tensor
}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

func (s *Scope) add(t *Tensor) {
	s.mu.Lock()
	s.ts = append(s.ts, t)
	s.mu.Unlock()
}

// Len reports how many tensors the scope holds.
func (s *Scope) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ts)
}

// Close frees every tensor of the scope (those already freed are skipped).
// The scope can be used again afterwards.
func (s *Scope) Close() {
	s.mu.Lock()
	ts := s.ts
	s.ts = nil
	s.mu.Unlock()
	for _, t := range ts {
		t.free()
	}
}

// Keep removes t from its scope so that it outlives Close; the caller then
// owns it (Free). It returns t.
func (t *Tensor) Keep() *Tensor {
	if t == nil || t.scope == nil {
		return t
	}
	s := t.scope
	s.mu.Lock()
	for i := len(s.ts) - 1; i >= 0; i-- {
		if s.ts[i] == t {
			s.ts = append(s.ts[:i], s.ts[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	t.scope = nil
	return t
}

// In moves t into scope s (from no scope or another one) and returns t.
func (t *Tensor) In(s *Scope) *Tensor {
	if t == nil || t.scope == s {
		return t
	}
	t.Keep()
	if s != nil {
		t.scope = s
		s.add(t)
	}
	return t
}

func finalize(t *Tensor) { t.free() }

// newT wraps a handle, registering it in scope s (may be nil).
func newT(h C.lt_tensor, s *Scope) *Tensor {
	t := &Tensor{h: h, scope: s}
	if s != nil {
		s.add(t)
	}
	runtime.SetFinalizer(t, finalize)
	return t
}

// errT returns an error tensor.
func errT(err error, s *Scope) *Tensor { return &Tensor{err: err, scope: s} }

// Errorf returns an error tensor with the given message; used by layers built
// on this package to report argument errors the same way. As with fmt.Errorf,
// a %w verb wraps an error: the message includes it and the result's Err
// unwraps to it.
func Errorf(op, format string, args ...any) *Tensor {
	err := fmt.Errorf(format, args...)
	return errT(&Error{Op: op, Msg: err.Error(), Cause: errors.Unwrap(err)}, nil)
}

func (t *Tensor) free() {
	if t == nil || t.h == nil {
		return
	}
	C.lt_free(t.h)
	t.h = nil
	runtime.SetFinalizer(t, nil)
}

// Free releases the tensor now. Safe to call twice and on error tensors.
func (t *Tensor) Free() {
	if t == nil {
		return
	}
	t.free()
	if t.err == nil {
		t.err = &Error{Op: "use", Msg: "tensor was freed"}
	}
}

// Err returns the error this tensor carries, or nil.
func (t *Tensor) Err() error {
	if t == nil {
		return &Error{Op: "use", Msg: "nil tensor"}
	}
	if t.err != nil {
		return t.err
	}
	if t.h == nil {
		return &Error{Op: "use", Msg: "tensor was freed"}
	}
	return nil
}

// Scope returns the scope the tensor belongs to (nil if none).
func (t *Tensor) Scope() *Scope {
	if t == nil {
		return nil
	}
	return t.scope
}

// pick returns the first non-nil scope among ts, or the first error.
func pick(ts ...*Tensor) (*Scope, error) {
	var s *Scope
	for _, t := range ts {
		if err := t.Err(); err != nil {
			return nil, err
		}
		if s == nil && t.scope != nil {
			s = t.scope
		}
	}
	return s, nil
}

// call runs a shim function producing one tensor from the operands ts, with
// sticky-error and scope handling. Operands are kept alive across the call.
func call(op string, f func(out *C.lt_tensor) C.lt_err, ts ...*Tensor) *Tensor {
	s, err := pick(ts...)
	if err != nil {
		return errT(err, nil)
	}
	var out C.lt_tensor
	e := f(&out)
	for _, t := range ts {
		runtime.KeepAlive(t)
	}
	if err := cerr(op, e); err != nil {
		return errT(err, nil)
	}
	return newT(out, s)
}

// callIn is call for functions with no tensor operands: the result joins s.
func callIn(s *Scope, op string, f func(out *C.lt_tensor) C.lt_err) *Tensor {
	var out C.lt_tensor
	if err := cerr(op, f(&out)); err != nil {
		return errT(err, nil)
	}
	return newT(out, s)
}

// Elem lists the Go element types a tensor can be built from and exported to.
type Elem interface {
	float32 | float64 | int64 | int32 | uint8 | bool | int8 | int16
}

func dtypeOf[T Elem]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case int64:
		return Int64
	case int32:
		return Int32
	case int16:
		return Int16
	case int8:
		return Int8
	case uint8:
		return Uint8
	case bool:
		return Bool
	}
	return Invalid
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// FromSlice copies data into a new CPU tensor of the given shape (no shape:
// 1-D of len(data)). The result joins scope s (nil: caller frees).
func FromSlice[T Elem](s *Scope, data []T, shape ...int64) *Tensor {
	if len(shape) == 0 {
		shape = []int64{int64(len(data))}
	}
	for _, d := range shape {
		if d < 0 {
			return errT(&Error{Op: "from_slice", Msg: fmt.Sprintf("negative dimension in shape %v", shape)}, nil)
		}
	}
	if n := numel(shape); n != int64(len(data)) {
		return errT(&Error{Op: "from_slice", Msg: fmt.Sprintf("shape %v holds %d elements, data has %d", shape, n, len(data))}, nil)
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	dt := dtypeOf[T]()
	t := callIn(s, "from_slice", func(out *C.lt_tensor) C.lt_err {
		return C.lt_from_data(p, i64ptr(shape), C.int(len(shape)), C.int(dt), out)
	})
	runtime.KeepAlive(data)
	return t
}

// Scalar returns a 0-dimensional float32 tensor.
func Scalar(s *Scope, v float64) *Tensor { return Full(s, v, Float32, CPU) }

// Full returns a tensor of the given shape filled with v.
func Full(s *Scope, v float64, dt DType, dev Device, shape ...int64) *Tensor {
	return callIn(s, "full", func(out *C.lt_tensor) C.lt_err {
		return C.lt_full(i64ptr(shape), C.int(len(shape)), C.double(v), C.int(dt), C.int(dev.Type), C.int(dev.Index), out)
	})
}

// Zeros returns a float32 CPU tensor of zeros.
func Zeros(s *Scope, shape ...int64) *Tensor { return Full(s, 0, Float32, CPU, shape...) }

// Ones returns a float32 CPU tensor of ones.
func Ones(s *Scope, shape ...int64) *Tensor { return Full(s, 1, Float32, CPU, shape...) }

// Arange returns [start, end) by step as a 1-D tensor of type dt.
func Arange(s *Scope, start, end, step float64, dt DType) *Tensor {
	return callIn(s, "arange", func(out *C.lt_tensor) C.lt_err {
		return C.lt_arange(C.double(start), C.double(end), C.double(step), C.int(dt), out)
	})
}

// ZerosLike returns zeros of t's shape, type and device.
func (t *Tensor) ZerosLike() *Tensor {
	return call("zeros_like", func(out *C.lt_tensor) C.lt_err { return C.lt_zeros_like(t.h, out) }, t)
}

// Alias returns a second handle to the same tensor (same storage and autograd
// identity), owned separately.
func (t *Tensor) Alias() *Tensor {
	return call("alias", func(out *C.lt_tensor) C.lt_err { return C.lt_shallow(t.h, out) }, t)
}

// --- metadata ---------------------------------------------------------------

// Dim returns the number of dimensions (0 for an error tensor).
func (t *Tensor) Dim() int {
	if t.Err() != nil {
		return 0
	}
	defer runtime.KeepAlive(t)
	return int(C.lt_ndim(t.h))
}

// Shape returns the sizes (nil for an error tensor).
func (t *Tensor) Shape() []int64 {
	if t.Err() != nil {
		return nil
	}
	defer runtime.KeepAlive(t)
	n := int(C.lt_ndim(t.h))
	s := make([]int64, n)
	if n > 0 {
		C.lt_shape(t.h, (*C.int64_t)(unsafe.Pointer(&s[0])))
	}
	return s
}

// Size returns the size of dimension d (negative counts from the end); -1 for
// an error tensor or a dimension out of range.
func (t *Tensor) Size(d int) int64 {
	s := t.Shape()
	if d < 0 {
		d += len(s)
	}
	if d < 0 || d >= len(s) {
		return -1
	}
	return s[d]
}

// Numel returns the number of elements.
func (t *Tensor) Numel() int64 {
	if t.Err() != nil {
		return 0
	}
	defer runtime.KeepAlive(t)
	return int64(C.lt_numel(t.h))
}

// DType returns the element type (Invalid for an error tensor).
func (t *Tensor) DType() DType {
	if t.Err() != nil {
		return Invalid
	}
	defer runtime.KeepAlive(t)
	return DType(C.lt_dtype(t.h))
}

// Device returns where the tensor lives.
func (t *Tensor) Device() Device {
	if t.Err() != nil {
		return CPU
	}
	defer runtime.KeepAlive(t)
	var ty, idx C.int
	C.lt_device(t.h, &ty, &idx)
	return Device{Type: DeviceType(ty), Index: int(idx)}
}

// IsContiguous reports row-major contiguity.
func (t *Tensor) IsContiguous() bool {
	if t.Err() != nil {
		return false
	}
	defer runtime.KeepAlive(t)
	return C.lt_is_contiguous(t.h) != 0
}

// IsChannelsLast reports a 4-D tensor stored NHWC.
func (t *Tensor) IsChannelsLast() bool {
	if t.Err() != nil {
		return false
	}
	defer runtime.KeepAlive(t)
	return C.lt_is_channels_last(t.h) != 0
}

// SameTensor reports whether t and u are handles to the same libtorch tensor.
func (t *Tensor) SameTensor(u *Tensor) bool {
	if t.Err() != nil || u.Err() != nil {
		return false
	}
	defer runtime.KeepAlive(t)
	defer runtime.KeepAlive(u)
	return C.lt_same_storage(t.h, u.h) != 0
}

func (t *Tensor) String() string {
	if err := t.Err(); err != nil {
		return "Tensor(error: " + err.Error() + ")"
	}
	return fmt.Sprintf("Tensor(%v, %v, %v)", t.Shape(), t.DType(), t.Device())
}

// --- export -----------------------------------------------------------------

// Data copies the tensor's elements into a new Go slice of element type T,
// converting the type and moving to the CPU when needed.
func Data[T Elem](t *Tensor) ([]T, error) {
	if err := t.Err(); err != nil {
		return nil, err
	}
	dt := dtypeOf[T]()
	src := t
	var tmp *Tensor
	if t.DType() != dt || t.Device() != CPU || !t.IsContiguous() {
		// Temporaries join no scope: a long-lived scope must not keep them.
		conv := t.To(dt, CPU).Keep()
		tmp = conv.Contiguous().Keep()
		conv.Free()
		defer tmp.Free()
		if err := tmp.Err(); err != nil {
			return nil, err
		}
		src = tmp
	}
	n := src.Numel()
	out := make([]T, n)
	var p unsafe.Pointer
	if n > 0 {
		p = unsafe.Pointer(&out[0])
	}
	var z T
	err := cerr("copy_to", C.lt_copy_to(src.h, p, C.int64_t(n*int64(unsafe.Sizeof(z)))))
	runtime.KeepAlive(src)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Float32s returns the elements as float32.
func (t *Tensor) Float32s() ([]float32, error) { return Data[float32](t) }

// Float64s returns the elements as float64.
func (t *Tensor) Float64s() ([]float64, error) { return Data[float64](t) }

// Int64s returns the elements as int64.
func (t *Tensor) Int64s() ([]int64, error) { return Data[int64](t) }

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() (float64, error) {
	if err := t.Err(); err != nil {
		return 0, err
	}
	var v C.double
	err := cerr("item", C.lt_item(t.h, &v))
	runtime.KeepAlive(t)
	return float64(v), err
}

// Assign makes t refer to u's tensor, freeing t's previous one; u is left
// empty (freed). Structures holding t (layers, optimiser lists) then see the
// new tensor: this is how a model changes dtype or device in place.
func (t *Tensor) Assign(u *Tensor) error {
	if t == nil {
		return &Error{Op: "assign", Msg: "nil destination"}
	}
	if err := u.Err(); err != nil {
		return err
	}
	old := t.h
	t.h, t.err = u.h, nil
	u.h = nil
	runtime.SetFinalizer(u, nil)
	if old != nil {
		C.lt_free(old)
	} else {
		runtime.SetFinalizer(t, finalize)
	}
	if u.err == nil {
		u.err = &Error{Op: "use", Msg: "tensor was moved by Assign"}
	}
	return nil
}

// Child runs f with a new scope c and frees every tensor made in c when f
// returns, except the ones f returns, which move to s (nil s: to no scope,
// the caller frees them). Inputs that f should compute from are brought into
// c with c.Use, so that results derived from them land in c. Model code wraps
// each block in Child so that intermediates are released as soon as the
// block is done (autograd keeps its own references to what backward needs).
func (s *Scope) Child(f func(c *Scope) []*Tensor) []*Tensor {
	c := NewScope()
	out := f(c)
	for _, t := range out {
		if t != nil && t.scope == c {
			t.In(s)
		}
	}
	c.Close()
	return out
}

// Use returns handles to ts (same tensors) that belong to c, so that
// operations on them put their results in c. Error tensors pass through.
func (c *Scope) Use(ts ...*Tensor) []*Tensor {
	out := make([]*Tensor, len(ts))
	for i, t := range ts {
		if t.Err() != nil {
			out[i] = t
			continue
		}
		out[i] = t.Alias().In(c)
	}
	return out
}
