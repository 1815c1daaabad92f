package torch

/*
#include "../csrc/lvshim.h"
*/
import "C"

// Conv holds 2-D convolution options; zero values mean stride 1, padding 0,
// dilation 1, groups 1. Pairs are (height, width).
type Conv struct {
	Stride, Padding, Dilation [2]int64
	Groups                    int64
}

// Sq returns a pair with both entries v.
func Sq(v int64) [2]int64 { return [2]int64{v, v} }

func (c Conv) norm() Conv {
	if c.Stride == [2]int64{} {
		c.Stride = Sq(1)
	}
	if c.Dilation == [2]int64{} {
		c.Dilation = Sq(1)
	}
	if c.Groups == 0 {
		c.Groups = 1
	}
	return c
}

// Conv2d convolves NCHW input t with weight w (out, in/groups, kh, kw) and
// optional bias b (nil for none).
func (t *Tensor) Conv2d(w, b *Tensor, o Conv) *Tensor {
	o = o.norm()
	ops := []*Tensor{t, w}
	if b != nil {
		ops = append(ops, b)
	}
	return call("conv2d", func(out *C.lt_tensor) C.lt_err {
		var bh C.lt_tensor
		if b != nil {
			bh = b.h
		}
		return C.lt_conv2d(t.h, w.h, bh, i64ptr(o.Stride[:]), i64ptr(o.Padding[:]), i64ptr(o.Dilation[:]), C.int64_t(o.Groups), out)
	}, ops...)
}

// BatchNorm normalises over (N, H, W) per channel. In training mode it uses
// batch statistics and updates runningMean/runningVar in place with momentum
// (unbiased variance, as torch); in eval mode it uses the running statistics.
// weight, bias and the running tensors may be nil.
func (t *Tensor) BatchNorm(weight, bias, runningMean, runningVar *Tensor, training bool, momentum, eps float64) *Tensor {
	opt := []*Tensor{weight, bias, runningMean, runningVar}
	ops := []*Tensor{t}
	for _, x := range opt {
		if x != nil {
			ops = append(ops, x)
		}
	}
	return call("batch_norm", func(out *C.lt_tensor) C.lt_err {
		var hs [4]C.lt_tensor
		for i, x := range opt {
			if x != nil {
				hs[i] = x.h
			}
		}
		return C.lt_batch_norm(t.h, hs[0], hs[1], hs[2], hs[3], cbool(training), C.double(momentum), C.double(eps), out)
	}, ops...)
}

// MaxPool2d is max pooling with kernel k, stride s and implicit -inf padding p.
func (t *Tensor) MaxPool2d(k, s, p [2]int64, ceil bool) *Tensor {
	return call("max_pool2d", func(out *C.lt_tensor) C.lt_err {
		return C.lt_max_pool2d(t.h, i64ptr(k[:]), i64ptr(s[:]), i64ptr(p[:]), cbool(ceil), out)
	}, t)
}

// AvgPool2d is average pooling (padding counted).
func (t *Tensor) AvgPool2d(k, s, p [2]int64) *Tensor {
	return call("avg_pool2d", func(out *C.lt_tensor) C.lt_err {
		return C.lt_avg_pool2d(t.h, i64ptr(k[:]), i64ptr(s[:]), i64ptr(p[:]), out)
	}, t)
}

// AdaptiveAvgPool2d pools to an oh x ow output.
func (t *Tensor) AdaptiveAvgPool2d(oh, ow int64) *Tensor {
	return call("adaptive_avg_pool2d", func(out *C.lt_tensor) C.lt_err {
		return C.lt_adaptive_avg_pool2d(t.h, C.int64_t(oh), C.int64_t(ow), out)
	}, t)
}

// ReplicationPad2d pads the last two dimensions by repeating edge values:
// left, right, top, bottom.
func (t *Tensor) ReplicationPad2d(left, right, top, bottom int64) *Tensor {
	p := [4]int64{left, right, top, bottom}
	return call("replication_pad2d", func(out *C.lt_tensor) C.lt_err {
		return C.lt_replication_pad2d(t.h, i64ptr(p[:]), out)
	}, t)
}

// ConstantPad pads with value v; pad lists (before, after) pairs starting
// from the last dimension, as torch.nn.functional.pad.
func (t *Tensor) ConstantPad(v float64, pad ...int64) *Tensor {
	return call("constant_pad", func(out *C.lt_tensor) C.lt_err {
		return C.lt_constant_pad(t.h, i64ptr(pad), C.int(len(pad)), C.double(v), out)
	}, t)
}

// Linear returns t @ w^T + b (b may be nil).
func (t *Tensor) Linear(w, b *Tensor) *Tensor {
	ops := []*Tensor{t, w}
	if b != nil {
		ops = append(ops, b)
	}
	return call("linear", func(out *C.lt_tensor) C.lt_err {
		var bh C.lt_tensor
		if b != nil {
			bh = b.h
		}
		return C.lt_linear(t.h, w.h, bh, out)
	}, ops...)
}

// Matmul is torch.matmul.
func (t *Tensor) Matmul(u *Tensor) *Tensor {
	return call("matmul", func(out *C.lt_tensor) C.lt_err { return C.lt_matmul(t.h, u.h, out) }, t, u)
}

// Bmm is the batched matrix product (B,n,m) x (B,m,p).
func (t *Tensor) Bmm(u *Tensor) *Tensor {
	return call("bmm", func(out *C.lt_tensor) C.lt_err { return C.lt_bmm(t.h, u.h, out) }, t, u)
}

// Softmax along dim.
func (t *Tensor) Softmax(dim int64) *Tensor {
	return call("softmax", func(out *C.lt_tensor) C.lt_err { return C.lt_softmax(t.h, C.int64_t(dim), 0, out) }, t)
}

// LogSoftmax along dim.
func (t *Tensor) LogSoftmax(dim int64) *Tensor {
	return call("log_softmax", func(out *C.lt_tensor) C.lt_err { return C.lt_softmax(t.h, C.int64_t(dim), 1, out) }, t)
}

// CosineSimilarity along dim, as torch.nn.functional.cosine_similarity.
func CosineSimilarity(a, b *Tensor, dim int64, eps float64) *Tensor {
	return call("cosine_similarity", func(out *C.lt_tensor) C.lt_err {
		return C.lt_cosine_similarity(a.h, b.h, C.int64_t(dim), C.double(eps), out)
	}, a, b)
}

// Normalize divides by the p-norm along dim (at least eps), as
// torch.nn.functional.normalize.
func (t *Tensor) Normalize(p float64, dim int64, eps float64) *Tensor {
	return call("normalize", func(out *C.lt_tensor) C.lt_err {
		return C.lt_normalize(t.h, C.double(p), C.int64_t(dim), C.double(eps), out)
	}, t)
}

// Reduction selects how a loss is reduced.
type Reduction int

// Reductions, as torch's.
const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// CrossEntropy is torch.nn.functional.cross_entropy of logits (N,C[,...])
// against int64 class targets, with optional class weights (nil for none).
func CrossEntropy(logits, target, weight *Tensor, red Reduction) *Tensor {
	ops := []*Tensor{logits, target}
	if weight != nil {
		ops = append(ops, weight)
	}
	return call("cross_entropy", func(out *C.lt_tensor) C.lt_err {
		var wh C.lt_tensor
		if weight != nil {
			wh = weight.h
		}
		return C.lt_cross_entropy(logits.h, target.h, wh, C.int(red), -100, 0, out)
	}, ops...)
}

// UpsampleNearest2d resizes the last two dimensions by nearest neighbour.
func (t *Tensor) UpsampleNearest2d(oh, ow int64) *Tensor {
	return call("upsample_nearest2d", func(out *C.lt_tensor) C.lt_err {
		return C.lt_upsample_nearest2d(t.h, C.int64_t(oh), C.int64_t(ow), out)
	}, t)
}

// UpsampleBilinear2d resizes the last two dimensions bilinearly
// (torch.nn.functional.interpolate mode="bilinear").
func (t *Tensor) UpsampleBilinear2d(oh, ow int64, alignCorners bool) *Tensor {
	return call("upsample_bilinear2d", func(out *C.lt_tensor) C.lt_err {
		return C.lt_upsample_bilinear2d(t.h, C.int64_t(oh), C.int64_t(ow), cbool(alignCorners), out)
	}, t)
}

// Unfold extracts sliding blocks (torch.nn.functional.unfold): (N,C,H,W) ->
// (N, C*kh*kw, L).
func (t *Tensor) Unfold(k, dilation, padding, stride [2]int64) *Tensor {
	return call("unfold", func(out *C.lt_tensor) C.lt_err {
		return C.lt_unfold(t.h, i64ptr(k[:]), i64ptr(dilation[:]), i64ptr(padding[:]), i64ptr(stride[:]), out)
	}, t)
}

// Dropout zeroes elements with probability p in training mode, scaling the
// rest by 1/(1-p); g (nil: libtorch's global generator) draws the mask.
func (t *Tensor) Dropout(p float64, train bool, g *Generator) *Tensor {
	if e := g.closedErr("dropout"); e != nil {
		return e
	}
	return call("dropout", func(out *C.lt_tensor) C.lt_err {
		return C.lt_dropout(t.h, C.double(p), cbool(train), g.handle(), out)
	}, t)
}

// MPFF is LVNet's multi-scale patch feature fusion as one fused op with its
// own backward (see model.MPFF and lvshim.h): float32 on the CPU.
func MPFF(fa, fb *Tensor) *Tensor {
	return call("mpff", func(out *C.lt_tensor) C.lt_err { return C.lt_mpff(fa.h, fb.h, out) }, fa, fb)
}
