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
	// Sync, when set in training mode, makes every BatchNorm2d compute its
	// batch statistics over all ranks of a data-parallel job
	// (SyncBatchNorm): Sync sums a tensor over the ranks, differentiably
	// (a torch.Group).
	Sync interface {
		AllReduceSum(x *torch.Tensor) *torch.Tensor
		Rank() int
		World() int
	}
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
		if ctx.Sync != nil {
			return b.syncForward(ctx, x)
		}
	}
	return x.BatchNorm(b.W, b.B, b.RunningMean, b.RunningVar, ctx.Train, b.Momentum, b.Eps)
}

// syncForward is SyncBatchNorm's training forward, numerically as torch's:
// each rank computes its per-channel mean and sum of squared deviations
// (stable, as plain BatchNorm), the ranks exchange them with their counts
// (one differentiable all-reduce of a World x (2C+1) table, each rank
// filling its row: an all-gather whose backward sums the gradients over the
// ranks), and combine them as parallel Welford does: mean = sum n_r m_r / N,
// M2 = sum (M2_r + n_r (m_r - mean)^2). The running statistics take the
// unbiased variance M2 / (N-1), as torch does.
func (b *BatchNorm2d) syncForward(ctx *Ctx, x *torch.Tensor) *torch.Tensor {
	sh := x.Shape()
	if x.Err() != nil || len(sh) != 4 {
		return x.BatchNorm(b.W, b.B, b.RunningMean, b.RunningVar, true, b.Momentum, b.Eps)
	}
	c, rank, world := sh[1], int64(ctx.Sync.Rank()), int64(ctx.Sync.World())
	s := x.Scope()
	view := func(t *torch.Tensor) *torch.Tensor { return t.Reshape(1, c, 1, 1) }
	n := float64(sh[0] * sh[2] * sh[3])
	m := x.Mean(false, 0, 2, 3)
	m2 := x.Sub(view(m)).Square().Sum(false, 0, 2, 3)
	row := torch.Cat(0, m, m2, torch.Full(nil, n, x.DType(), x.Device(), 1).In(s)).Reshape(1, 2*c+1)
	table := torch.Cat(0, torch.Full(nil, 0, x.DType(), x.Device(), rank, 2*c+1).In(s), row,
		torch.Full(nil, 0, x.DType(), x.Device(), world-rank-1, 2*c+1).In(s))
	all := ctx.Sync.AllReduceSum(table)
	means, m2s, counts := all.Narrow(1, 0, c), all.Narrow(1, c, c), all.Narrow(1, 2*c, 1)
	total := counts.Sum(false)
	mean := means.Mul(counts).Sum(false, 0).Div(total)
	dev := means.Sub(mean.Reshape(1, c))
	variance := m2s.Sum(false, 0).Add(dev.Square().Mul(counts).Sum(false, 0)).Div(total)
	y := x.Sub(view(mean)).Mul(view(variance.AddScalar(b.Eps).Rsqrt().Mul(b.W))).Add(view(b.B))
	if nv, err := total.Item(); err == nil && nv > 1 {
		mo := b.Momentum
		rm := b.RunningMean.Detach().In(s).MulScalar(1 - mo).Add(mean.Detach().MulScalar(mo))
		rv := b.RunningVar.Detach().In(s).MulScalar(1 - mo).Add(variance.Detach().MulScalar(mo * nv / (nv - 1)))
		if err := b.RunningMean.CopyFrom(rm); err != nil {
			return torch.Errorf("sync_batch_norm", "running mean: %w", err)
		}
		if err := b.RunningVar.CopyFrom(rv); err != nil {
			return torch.Errorf("sync_batch_norm", "running var: %w", err)
		}
	}
	return y
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
