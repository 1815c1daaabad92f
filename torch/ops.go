package torch

/*
#include "../csrc/lvshim.h"
*/
import "C"

import (
	"runtime"
)

// --- conversion -------------------------------------------------------------

// To converts to element type dt on device dev (a no-op handle copy when both
// already match).
func (t *Tensor) To(dt DType, dev Device) *Tensor {
	return call("to", func(out *C.lt_tensor) C.lt_err {
		return C.lt_to(t.h, C.int(dt), C.int(dev.Type), C.int(dev.Index), out)
	}, t)
}

// ToDType converts the element type, keeping the device.
func (t *Tensor) ToDType(dt DType) *Tensor { return t.To(dt, t.Device()) }

// ToDevice moves to dev, keeping the element type.
func (t *Tensor) ToDevice(dev Device) *Tensor { return t.To(t.DType(), dev) }

// Contiguous returns a row-major contiguous tensor.
func (t *Tensor) Contiguous() *Tensor {
	return call("contiguous", func(out *C.lt_tensor) C.lt_err { return C.lt_contiguous(t.h, 0, out) }, t)
}

// ChannelsLast returns a 4-D tensor stored NHWC (the layout oneDNN prefers).
func (t *Tensor) ChannelsLast() *Tensor {
	return call("channels_last", func(out *C.lt_tensor) C.lt_err { return C.lt_contiguous(t.h, 1, out) }, t)
}

// Clone copies the data (differentiably).
func (t *Tensor) Clone() *Tensor {
	return call("clone", func(out *C.lt_tensor) C.lt_err { return C.lt_clone(t.h, out) }, t)
}

// Detach returns the same data cut from the autograd graph.
func (t *Tensor) Detach() *Tensor {
	return call("detach", func(out *C.lt_tensor) C.lt_err { return C.lt_detach(t.h, out) }, t)
}

// --- in place ---------------------------------------------------------------

// CopyFrom copies src into t in place (no autograd record). Shapes must
// broadcast; types convert.
func (t *Tensor) CopyFrom(src *Tensor) error {
	if _, err := pick(t, src); err != nil {
		return err
	}
	err := cerr("copy_", C.lt_copy_(t.h, src.h))
	runtime.KeepAlive(t)
	runtime.KeepAlive(src)
	return err
}

// Fill sets every element to v in place (no autograd record).
func (t *Tensor) Fill(v float64) error {
	if err := t.Err(); err != nil {
		return err
	}
	err := cerr("fill_", C.lt_fill_(t.h, C.double(v)))
	runtime.KeepAlive(t)
	return err
}

// --- elementwise ------------------------------------------------------------

func binary(name string, op C.int, a, b *Tensor) *Tensor {
	return call(name, func(out *C.lt_tensor) C.lt_err { return C.lt_binary(op, a.h, b.h, out) }, a, b)
}

func binaryScalar(name string, op C.int, a *Tensor, v float64) *Tensor {
	return call(name, func(out *C.lt_tensor) C.lt_err { return C.lt_binary_scalar(op, a.h, C.double(v), out) }, a)
}

func unary(name string, op C.int, a *Tensor) *Tensor {
	return call(name, func(out *C.lt_tensor) C.lt_err { return C.lt_unary(op, a.h, out) }, a)
}

// Add returns t + u (broadcasting).
func (t *Tensor) Add(u *Tensor) *Tensor { return binary("add", C.LT_ADD, t, u) }

// Sub returns t - u.
func (t *Tensor) Sub(u *Tensor) *Tensor { return binary("sub", C.LT_SUB, t, u) }

// Mul returns t * u elementwise.
func (t *Tensor) Mul(u *Tensor) *Tensor { return binary("mul", C.LT_MUL, t, u) }

// Div returns t / u elementwise.
func (t *Tensor) Div(u *Tensor) *Tensor { return binary("div", C.LT_DIV, t, u) }

// Pow returns t ** u elementwise.
func (t *Tensor) Pow(u *Tensor) *Tensor { return binary("pow", C.LT_POW, t, u) }

// Maximum returns the elementwise maximum.
func (t *Tensor) Maximum(u *Tensor) *Tensor { return binary("maximum", C.LT_MAXIMUM, t, u) }

// Minimum returns the elementwise minimum.
func (t *Tensor) Minimum(u *Tensor) *Tensor { return binary("minimum", C.LT_MINIMUM, t, u) }

// Eq returns t == u as bool.
func (t *Tensor) Eq(u *Tensor) *Tensor { return binary("eq", C.LT_EQ, t, u) }

// Ne returns t != u as bool.
func (t *Tensor) Ne(u *Tensor) *Tensor { return binary("ne", C.LT_NE, t, u) }

// Lt returns t < u as bool.
func (t *Tensor) Lt(u *Tensor) *Tensor { return binary("lt", C.LT_LT, t, u) }

// Le returns t <= u as bool.
func (t *Tensor) Le(u *Tensor) *Tensor { return binary("le", C.LT_LE, t, u) }

// Gt returns t > u as bool.
func (t *Tensor) Gt(u *Tensor) *Tensor { return binary("gt", C.LT_GT, t, u) }

// Ge returns t >= u as bool.
func (t *Tensor) Ge(u *Tensor) *Tensor { return binary("ge", C.LT_GE, t, u) }

// LogicalAnd returns t && u.
func (t *Tensor) LogicalAnd(u *Tensor) *Tensor { return binary("logical_and", C.LT_AND, t, u) }

// LogicalOr returns t || u.
func (t *Tensor) LogicalOr(u *Tensor) *Tensor { return binary("logical_or", C.LT_OR, t, u) }

// AddScalar returns t + v.
func (t *Tensor) AddScalar(v float64) *Tensor { return binaryScalar("add", C.LT_ADD, t, v) }

// SubScalar returns t - v.
func (t *Tensor) SubScalar(v float64) *Tensor { return binaryScalar("sub", C.LT_SUB, t, v) }

// MulScalar returns t * v.
func (t *Tensor) MulScalar(v float64) *Tensor { return binaryScalar("mul", C.LT_MUL, t, v) }

// DivScalar returns t / v.
func (t *Tensor) DivScalar(v float64) *Tensor { return binaryScalar("div", C.LT_DIV, t, v) }

// PowScalar returns t ** v.
func (t *Tensor) PowScalar(v float64) *Tensor { return binaryScalar("pow", C.LT_POW, t, v) }

// ClampMin returns max(t, v).
func (t *Tensor) ClampMin(v float64) *Tensor { return binaryScalar("clamp_min", C.LT_MAXIMUM, t, v) }

// ClampMax returns min(t, v).
func (t *Tensor) ClampMax(v float64) *Tensor { return binaryScalar("clamp_max", C.LT_MINIMUM, t, v) }

// EqScalar returns t == v as bool.
func (t *Tensor) EqScalar(v float64) *Tensor { return binaryScalar("eq", C.LT_EQ, t, v) }

// NeScalar returns t != v as bool.
func (t *Tensor) NeScalar(v float64) *Tensor { return binaryScalar("ne", C.LT_NE, t, v) }

// LtScalar returns t < v as bool.
func (t *Tensor) LtScalar(v float64) *Tensor { return binaryScalar("lt", C.LT_LT, t, v) }

// LeScalar returns t <= v as bool.
func (t *Tensor) LeScalar(v float64) *Tensor { return binaryScalar("le", C.LT_LE, t, v) }

// GtScalar returns t > v as bool.
func (t *Tensor) GtScalar(v float64) *Tensor { return binaryScalar("gt", C.LT_GT, t, v) }

// GeScalar returns t >= v as bool.
func (t *Tensor) GeScalar(v float64) *Tensor { return binaryScalar("ge", C.LT_GE, t, v) }

// Neg returns -t.
func (t *Tensor) Neg() *Tensor { return unary("neg", C.LT_NEG, t) }

// Exp returns e**t.
func (t *Tensor) Exp() *Tensor { return unary("exp", C.LT_EXP, t) }

// Log returns the natural logarithm.
func (t *Tensor) Log() *Tensor { return unary("log", C.LT_LOG, t) }

// Sqrt returns the square root.
func (t *Tensor) Sqrt() *Tensor { return unary("sqrt", C.LT_SQRT, t) }

// Rsqrt returns 1/sqrt(t).
func (t *Tensor) Rsqrt() *Tensor { return unary("rsqrt", C.LT_RSQRT, t) }

// Abs returns |t|.
func (t *Tensor) Abs() *Tensor { return unary("abs", C.LT_ABS, t) }

// Tanh returns tanh(t).
func (t *Tensor) Tanh() *Tensor { return unary("tanh", C.LT_TANH, t) }

// Sigmoid returns 1/(1+e**-t).
func (t *Tensor) Sigmoid() *Tensor { return unary("sigmoid", C.LT_SIGMOID, t) }

// Relu returns max(t, 0).
func (t *Tensor) Relu() *Tensor { return unary("relu", C.LT_RELU, t) }

// Sin returns sin(t).
func (t *Tensor) Sin() *Tensor { return unary("sin", C.LT_SIN, t) }

// Cos returns cos(t).
func (t *Tensor) Cos() *Tensor { return unary("cos", C.LT_COS, t) }

// Floor rounds down.
func (t *Tensor) Floor() *Tensor { return unary("floor", C.LT_FLOOR, t) }

// Round rounds half to even.
func (t *Tensor) Round() *Tensor { return unary("round", C.LT_ROUND, t) }

// Sign returns -1, 0 or 1.
func (t *Tensor) Sign() *Tensor { return unary("sign", C.LT_SIGN, t) }

// LogicalNot returns !t.
func (t *Tensor) LogicalNot() *Tensor { return unary("logical_not", C.LT_NOT, t) }

// Reciprocal returns 1/t.
func (t *Tensor) Reciprocal() *Tensor { return unary("reciprocal", C.LT_RECIPROCAL, t) }

// Square returns t*t.
func (t *Tensor) Square() *Tensor { return unary("square", C.LT_SQUARE, t) }

// Hardtanh clamps to [lo, hi] (differentiable like nn.Hardtanh).
func (t *Tensor) Hardtanh(lo, hi float64) *Tensor {
	return call("hardtanh", func(out *C.lt_tensor) C.lt_err { return C.lt_hardtanh(t.h, C.double(lo), C.double(hi), out) }, t)
}

// Clamp clamps to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor {
	return call("clamp", func(out *C.lt_tensor) C.lt_err { return C.lt_clamp(t.h, C.double(lo), C.double(hi), out) }, t)
}

// Where returns a where cond is true, else b.
func Where(cond, a, b *Tensor) *Tensor {
	return call("where", func(out *C.lt_tensor) C.lt_err { return C.lt_where(cond.h, a.h, b.h, out) }, cond, a, b)
}

// AddCMul returns t + v*a*b.
func (t *Tensor) AddCMul(a, b *Tensor, v float64) *Tensor {
	return call("addcmul", func(out *C.lt_tensor) C.lt_err { return C.lt_addcmul(t.h, a.h, b.h, C.double(v), out) }, t, a, b)
}

// --- reductions -------------------------------------------------------------

func reduce(name string, op C.int, t *Tensor, keepdim bool, dims []int64) *Tensor {
	return call(name, func(out *C.lt_tensor) C.lt_err {
		return C.lt_reduce(op, t.h, i64ptr(dims), C.int(len(dims)), cbool(keepdim), out)
	}, t)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Sum sums over dims (none: all elements, giving a 0-D tensor).
func (t *Tensor) Sum(keepdim bool, dims ...int64) *Tensor {
	return reduce("sum", C.LT_SUM, t, keepdim, dims)
}

// Mean averages over dims (none: all elements).
func (t *Tensor) Mean(keepdim bool, dims ...int64) *Tensor {
	return reduce("mean", C.LT_MEAN, t, keepdim, dims)
}

// Amax is the maximum over dims (none: all elements).
func (t *Tensor) Amax(keepdim bool, dims ...int64) *Tensor {
	return reduce("amax", C.LT_AMAX, t, keepdim, dims)
}

// Amin is the minimum over dims (none: all elements).
func (t *Tensor) Amin(keepdim bool, dims ...int64) *Tensor {
	return reduce("amin", C.LT_AMIN, t, keepdim, dims)
}

// MaxDim returns the maxima along dim and their indices.
func (t *Tensor) MaxDim(dim int64, keepdim bool) (values, indices *Tensor) {
	if _, err := pick(t); err != nil {
		return errT(err, nil), errT(err, nil)
	}
	var v, i C.lt_tensor
	err := cerr("max", C.lt_max_dim(t.h, C.int64_t(dim), cbool(keepdim), &v, &i))
	runtime.KeepAlive(t)
	if err != nil {
		return errT(err, nil), errT(err, nil)
	}
	return newT(v, t.scope), newT(i, t.scope)
}

// Argmax returns the indices of the maxima along dim.
func (t *Tensor) Argmax(dim int64, keepdim bool) *Tensor {
	return call("argmax", func(out *C.lt_tensor) C.lt_err { return C.lt_argmax(t.h, C.int64_t(dim), cbool(keepdim), out) }, t)
}

// Norm returns the p-norm over dims (none: all elements).
func (t *Tensor) Norm(p float64, keepdim bool, dims ...int64) *Tensor {
	return call("norm", func(out *C.lt_tensor) C.lt_err {
		return C.lt_norm(t.h, C.double(p), i64ptr(dims), C.int(len(dims)), cbool(keepdim), out)
	}, t)
}

// --- shape ------------------------------------------------------------------

// Reshape returns a tensor of the new shape (-1 infers one size).
func (t *Tensor) Reshape(shape ...int64) *Tensor {
	return call("reshape", func(out *C.lt_tensor) C.lt_err { return C.lt_reshape(t.h, i64ptr(shape), C.int(len(shape)), out) }, t)
}

// Permute reorders dimensions.
func (t *Tensor) Permute(dims ...int64) *Tensor {
	return call("permute", func(out *C.lt_tensor) C.lt_err { return C.lt_permute(t.h, i64ptr(dims), C.int(len(dims)), out) }, t)
}

// Transpose swaps two dimensions.
func (t *Tensor) Transpose(d0, d1 int64) *Tensor {
	return call("transpose", func(out *C.lt_tensor) C.lt_err { return C.lt_transpose(t.h, C.int64_t(d0), C.int64_t(d1), out) }, t)
}

// Expand broadcasts to shape (-1 keeps a size) without copying.
func (t *Tensor) Expand(shape ...int64) *Tensor {
	return call("expand", func(out *C.lt_tensor) C.lt_err { return C.lt_expand(t.h, i64ptr(shape), C.int(len(shape)), out) }, t)
}

// Unsqueeze inserts a dimension of size 1.
func (t *Tensor) Unsqueeze(dim int64) *Tensor {
	return call("unsqueeze", func(out *C.lt_tensor) C.lt_err { return C.lt_unsqueeze(t.h, C.int64_t(dim), out) }, t)
}

// Squeeze removes dimension dim if it has size 1.
func (t *Tensor) Squeeze(dim int64) *Tensor {
	return call("squeeze", func(out *C.lt_tensor) C.lt_err { return C.lt_squeeze(t.h, C.int64_t(dim), out) }, t)
}

// Flatten merges dimensions start..end (inclusive; negative from the end).
func (t *Tensor) Flatten(start, end int64) *Tensor {
	return call("flatten", func(out *C.lt_tensor) C.lt_err { return C.lt_flatten(t.h, C.int64_t(start), C.int64_t(end), out) }, t)
}

func handles(op string, ts []*Tensor) ([]C.lt_tensor, error) {
	if len(ts) == 0 {
		return nil, &Error{Op: op, Msg: "no tensors"}
	}
	if _, err := pick(ts...); err != nil {
		return nil, err
	}
	hs := make([]C.lt_tensor, len(ts))
	for i, t := range ts {
		hs[i] = t.h
	}
	return hs, nil
}

// Cat concatenates along dim.
func Cat(dim int64, ts ...*Tensor) *Tensor {
	hs, err := handles("cat", ts)
	if err != nil {
		return errT(err, nil)
	}
	return call("cat", func(out *C.lt_tensor) C.lt_err { return C.lt_cat(&hs[0], C.int(len(hs)), C.int64_t(dim), out) }, ts...)
}

// Stack stacks along a new dimension dim.
func Stack(dim int64, ts ...*Tensor) *Tensor {
	hs, err := handles("stack", ts)
	if err != nil {
		return errT(err, nil)
	}
	return call("stack", func(out *C.lt_tensor) C.lt_err { return C.lt_stack(&hs[0], C.int(len(hs)), C.int64_t(dim), out) }, ts...)
}

// Split cuts t along dim into pieces of the given sizes.
func (t *Tensor) Split(dim int64, sizes ...int64) []*Tensor {
	res := make([]*Tensor, len(sizes))
	fail := func(err error) []*Tensor {
		for i := range res {
			res[i] = errT(err, nil)
		}
		return res
	}
	if err := t.Err(); err != nil {
		return fail(err)
	}
	if len(sizes) == 0 {
		return nil
	}
	outs := make([]C.lt_tensor, len(sizes))
	err := cerr("split", C.lt_split(t.h, i64ptr(sizes), C.int(len(sizes)), C.int64_t(dim), &outs[0]))
	runtime.KeepAlive(t)
	if err != nil {
		return fail(err)
	}
	for i, h := range outs {
		res[i] = newT(h, t.scope)
	}
	return res
}

// Narrow returns the slice [start, start+n) of dimension dim (a view).
func (t *Tensor) Narrow(dim, start, n int64) *Tensor {
	return call("narrow", func(out *C.lt_tensor) C.lt_err {
		return C.lt_narrow(t.h, C.int64_t(dim), C.int64_t(start), C.int64_t(n), out)
	}, t)
}

// Slice returns every step-th entry of dimension dim from start up to (not
// including) end (a view; torch's t[..., start:end:step]).
func (t *Tensor) Slice(dim, start, end, step int64) *Tensor {
	return call("slice", func(out *C.lt_tensor) C.lt_err {
		return C.lt_slice(t.h, C.int64_t(dim), C.int64_t(start), C.int64_t(end), C.int64_t(step), out)
	}, t)
}

// IndexSelect picks the entries idx (int64, 1-D) along dim.
func (t *Tensor) IndexSelect(dim int64, idx *Tensor) *Tensor {
	return call("index_select", func(out *C.lt_tensor) C.lt_err { return C.lt_index_select(t.h, C.int64_t(dim), idx.h, out) }, t, idx)
}

// Gather is torch.gather.
func (t *Tensor) Gather(dim int64, idx *Tensor) *Tensor {
	return call("gather", func(out *C.lt_tensor) C.lt_err { return C.lt_gather(t.h, C.int64_t(dim), idx.h, out) }, t, idx)
}

// RepeatInterleave repeats each entry along dim r times.
func (t *Tensor) RepeatInterleave(r, dim int64) *Tensor {
	return call("repeat_interleave", func(out *C.lt_tensor) C.lt_err {
		return C.lt_repeat_interleave(t.h, C.int64_t(r), C.int64_t(dim), out)
	}, t)
}

// Repeat tiles the tensor (torch.Tensor.repeat).
func (t *Tensor) Repeat(reps ...int64) *Tensor {
	return call("repeat", func(out *C.lt_tensor) C.lt_err { return C.lt_repeat(t.h, i64ptr(reps), C.int(len(reps)), out) }, t)
}

// Flip reverses the given dimensions.
func (t *Tensor) Flip(dims ...int64) *Tensor {
	return call("flip", func(out *C.lt_tensor) C.lt_err { return C.lt_flip(t.h, i64ptr(dims), C.int(len(dims)), out) }, t)
}
