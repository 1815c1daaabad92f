package nn

import (
	"github.com/lvnet-go/lvnet/torch"
)

// Ctx carries what changes between forward passes: train or eval mode and the
// generator that draws dropout masks. Layers hold no mode of their own, so one
// model can run concurrent forward passes with different contexts.
type Ctx struct {
	Train bool
	Gen   *torch.Generator // nil: libtorch's global generator
}

// EvalCtx returns the context of inference (eval mode, no dropout).
func EvalCtx() *Ctx { return &Ctx{} }

// TrainCtx returns a training context drawing dropout masks from g.
func TrainCtx(g *torch.Generator) *Ctx { return &Ctx{Train: true, Gen: g} }

// Conv2d is a 2-D convolution (weight out x in/groups x kh x kw, optional bias).
type Conv2d struct {
	W, B *torch.Tensor
	Opt  torch.Conv
}

// NewConv2d registers "weight" (and "bias" when bias) under p, initialised as
// PyTorch does.
func NewConv2d(p Path, in, out, k int64, opt torch.Conv, bias bool) *Conv2d {
	groups := opt.Groups
	if groups == 0 {
		groups = 1
	}
	fanIn := in / groups * k * k
	c := &Conv2d{Opt: opt}
	c.W = p.Param("weight", KaimingUniform(fanIn), out, in/groups, k, k)
	if bias {
		c.B = p.Param("bias", KaimingUniform(fanIn), out)
	}
	return c
}

// Forward applies the convolution.
func (c *Conv2d) Forward(x *torch.Tensor) *torch.Tensor { return x.Conv2d(c.W, c.B, c.Opt) }

// BatchNorm2d normalises per channel, with running statistics (momentum 0.1,
// eps 1e-5 as torch).
type BatchNorm2d struct {
	W, B, RunningMean, RunningVar, NumBatches *torch.Tensor
	Momentum, Eps                             float64
}

// NewBatchNorm2d registers weight, bias, running_mean, running_var and
// num_batches_tracked under p.
func NewBatchNorm2d(p Path, c int64) *BatchNorm2d {
	return &BatchNorm2d{
		W:           p.Param("weight", Const(1), c),
		B:           p.Param("bias", Const(0), c),
		RunningMean: p.Buffer("running_mean", Const(0), c),
		RunningVar:  p.Buffer("running_var", Const(1), c),
		NumBatches:  p.Buffer("num_batches_tracked", Counter()),
		Momentum:    0.1,
		Eps:         1e-5,
	}
}

// Forward normalises x; in training mode it uses batch statistics and updates
// the running ones.
func (b *BatchNorm2d) Forward(ctx *Ctx, x *torch.Tensor) *torch.Tensor {
	if ctx.Train {
		b.count(x)
	}
	return x.BatchNorm(b.W, b.B, b.RunningMean, b.RunningVar, ctx.Train, b.Momentum, b.Eps)
}

// ScaleShift returns the affine map of the eval-mode BatchNorm, y = scale*x +
// shift per channel with scale = gamma / sqrt(var + eps) and shift = beta -
// mean*scale, as float64 tensors of scope s (for folding it into a layer).
func (b *BatchNorm2d) ScaleShift(s *torch.Scope) (scale, shift *torch.Tensor) {
	f64 := func(t *torch.Tensor) *torch.Tensor { return t.Detach().In(s).ToDType(torch.Float64) }
	scale = f64(b.W).Div(f64(b.RunningVar).AddScalar(b.Eps).Sqrt())
	shift = f64(b.B).Sub(f64(b.RunningMean).Mul(scale))
	return scale, shift
}

// count increments num_batches_tracked, as torch does in training mode.
func (b *BatchNorm2d) count(x *torch.Tensor) {
	if x.Err() != nil {
		return
	}
	next := b.NumBatches.AddScalar(1)
	_ = b.NumBatches.CopyFrom(next)
	next.Free()
}

// Linear is y = x W^T + b.
type Linear struct {
	W, B *torch.Tensor
}

// NewLinear registers weight (out x in) and bias (out) under p.
func NewLinear(p Path, in, out int64) *Linear {
	return &Linear{
		W: p.Param("weight", KaimingUniform(in), out, in),
		B: p.Param("bias", KaimingUniform(in), out),
	}
}

// Forward applies the layer to the last dimension of x.
func (l *Linear) Forward(x *torch.Tensor) *torch.Tensor { return x.Linear(l.W, l.B) }
