package train

import (
	"fmt"
	"math"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/optim"
	"github.com/lvnet-go/lvnet/torch"
)

// StepStats are the numbers of one training step.
type StepStats struct {
	Loss, LossCls, LossSeg float64
	Correct, N             int
	Lambda                 float64 // mixup lambda (1: not mixed)
}

// Stepper performs training steps. It holds no global state: everything a
// step needs is in its fields and arguments, so one Stepper per device can
// run data-parallel replicas.
type Stepper struct {
	Model  *model.LVNet
	Opt    *optim.Adam
	Config Config
	Device torch.Device

	// Data-parallel training (all nil/0 on one process): Reducer averages
	// the gradients over Group during the backward pass; Buffers (the
	// BatchNorm statistics) are broadcast from rank 0 before every forward
	// pass, as DistributedDataParallel does; Rank varies the dropout draws.
	Reducer *torch.Reducer
	Group   *torch.Group
	Buffers []*torch.Tensor
	Rank    int
}

// stepSeed derives the seed of one step's random draws (dropout masks, mixup)
// from the run seed, the epoch and the batch index (splitmix64).
func stepSeed(seed int64, epoch, batch int) uint64 {
	x := uint64(seed) ^ uint64(epoch)<<40 ^ uint64(batch)
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// Step trains on one batch: forward, losses, backward, one Adam update. The
// step runs pinned to one OS thread, so that it is reproducible bit for bit
// (see torch.Pinned).
func (st *Stepper) Step(b data.Batch, epoch int) (stats StepStats, err error) {
	err = torch.Pinned(func() error {
		stats, err = st.step(b, epoch)
		return err
	})
	return stats, err
}

func (st *Stepper) step(b data.Batch, epoch int) (StepStats, error) {
	s := torch.NewScope()
	defer s.Close()
	cfg := st.Config
	n := int64(len(b.Labels))
	S := int64(b.Size)
	if n == 0 {
		return StepStats{}, fmt.Errorf("empty batch %d", b.Index)
	}
	seed := stepSeed(cfg.Seed, epoch, b.Index)
	if st.Rank > 0 {
		seed = stepSeed(int64(seed), st.Rank, 0) // each rank its own dropout masks
	}
	gen, err := torch.NewGenerator(seed)
	if err != nil {
		return StepStats{}, err
	}
	defer gen.Close()
	dev := st.Device
	dt := st.Model.DType()
	x := torch.FromSlice(s, b.Images, n, 3, S, S).To(dt, dev)
	labels := torch.FromSlice(s, b.Labels).ToDevice(dev)
	g := int64(st.Model.Config.Grid())

	// Patch targets: -100 (ignored) for fakes whose mask is unknown.
	var target *torch.Tensor
	anyMask := false
	if st.Model.Config.Localize && !cfg.SSPSL {
		known := make([]int64, n)
		for i, h := range b.HasMask {
			if h {
				known[i] = 1
				anyMask = true
			}
		}
		t19 := model.MaskTarget(torch.FromSlice(s, b.Masks, n, 1, S, S), g).ToDType(torch.Int64)
		target = model.IgnoreUnknown(t19, torch.FromSlice(s, known, n, 1, 1, 1)).ToDevice(dev)
	}

	// Mixup as the authors do it: with probability MixupProb, lambda ~
	// Beta(alpha, alpha), mixed with a random permutation of the batch.
	mix := Mix{Lambda: 1}
	if cfg.Mixup && !cfg.SSPSL && n > 1 {
		var err error
		if mix, err = DrawMix(s, gen, n, cfg.MixupProb, cfg.MixupAlpha); err != nil {
			return StepStats{}, err
		}
		if mix.Perm != nil {
			mix.Perm = mix.Perm.ToDevice(dev)
		}
		x = mix.Inputs(x)
	}
	lam := mix.Lambda

	ctx := nn.TrainCtx(gen)
	if st.Group != nil {
		if len(st.Buffers) > 0 {
			if err := st.Group.Broadcast(0, st.Buffers...); err != nil {
				return StepStats{}, fmt.Errorf("batch %d: broadcast buffers: %w", b.Index, err)
			}
		}
		if cfg.SyncBN {
			ctx.Sync = st.Group
		}
	}
	out := st.Model.Forward(ctx, x)
	if !anyMask {
		target = nil // no patch loss in a batch without known masks
	}
	var lossSeg *torch.Tensor
	var total, lossCls *torch.Tensor
	switch {
	case cfg.SSPSL:
		lossCls = mix.Loss(model.ClsLoss, out.Cls, labels)
		total = lossCls
		regions := torch.Zeros(s, n, 1, S, S)
		if b.Regions != nil {
			regions = torch.FromSlice(s, b.Regions, n, 1, S, S)
		}
		r19 := model.MaskTarget(regions, g).To(dt, dev)
		lossSeg, _ = model.SSPSL(out.Seg, out.Pro, r19, b.Labels)
		if epoch < cfg.SSPSLWarmEpochs {
			lossSeg = lossSeg.Add(realsTowardsZero(s, out.Seg, b.Labels))
		}
		total = total.Add(lossSeg)
	default:
		l := model.Supervised(out, labels, target, mix.Loss)
		lossCls, lossSeg, total = l.Cls, l.Seg, l.Total
	}
	st.Opt.ZeroGrad()
	if st.Reducer != nil {
		// Arm the reducer: it finds the parameters this loss does not reach
		// (the checkpoint-only members, and the patch head in a batch
		// without masks), so their gradients stay undefined, as here.
		if err := st.Reducer.Prepare(total); err != nil {
			return StepStats{}, fmt.Errorf("batch %d: %w", b.Index, err)
		}
	}
	if err := total.Backward(); err != nil {
		return StepStats{}, fmt.Errorf("batch %d: %w", b.Index, err)
	}
	if err := st.Opt.Step(); err != nil {
		return StepStats{}, fmt.Errorf("batch %d: %w", b.Index, err)
	}
	stats := StepStats{N: int(n), Lambda: lam}
	if stats.Loss, err = total.Item(); err != nil {
		return stats, err
	}
	if math.IsNaN(stats.Loss) || math.IsInf(stats.Loss, 0) {
		return stats, fmt.Errorf("batch %d: loss is %v", b.Index, stats.Loss)
	}
	stats.LossCls, _ = lossCls.Item()
	if lossSeg != nil {
		stats.LossSeg, _ = lossSeg.Item()
	}
	pred, err := out.Cls.Argmax(1, false).Int64s()
	if err != nil {
		return stats, err
	}
	for i, p := range pred {
		if p == b.Labels[i] {
			stats.Correct++
		}
	}
	return stats, nil
}

// realsTowardsZero is the SSPSL warm-up term: patch cross entropy of the real
// images' maps against all-zero targets.
func realsTowardsZero(s *torch.Scope, seg *torch.Tensor, labels []int64) *torch.Tensor {
	var idx []int64
	for i, l := range labels {
		if l == 0 {
			idx = append(idx, int64(i))
		}
	}
	if len(idx) == 0 {
		return torch.Zeros(s).ToDType(seg.DType())
	}
	reals := seg.IndexSelect(0, torch.FromSlice(s, idx).ToDevice(seg.Device()))
	sh := reals.Shape()
	if len(sh) != 4 {
		return reals
	}
	zero := torch.Full(s, 0, torch.Int64, seg.Device(), sh[0], sh[2], sh[3])
	return torch.CrossEntropy(reals, zero, nil, torch.ReduceMean)
}

// Mix is one batch's mixup draw: Lambda, and the permutation the batch is
// mixed with (nil: not mixed, Lambda 1).
type Mix struct {
	Lambda float64
	Perm   *torch.Tensor
}

// DrawMix draws the authors' mixup for a batch of n: with probability prob,
// lambda ~ Beta(alpha, alpha) and a random permutation; otherwise no mixing.
func DrawMix(s *torch.Scope, gen *torch.Generator, n int64, prob, alpha float64) (Mix, error) {
	r, err := torch.Rand(s, gen, 1).Item()
	if err != nil || r >= prob {
		return Mix{Lambda: 1}, err
	}
	lam, err := torch.Beta(s, gen, alpha, alpha, 1).Item()
	if err != nil {
		return Mix{Lambda: 1}, err
	}
	return Mix{Lambda: lam, Perm: torch.Randperm(s, gen, n)}, nil
}

// Inputs returns lambda*x + (1-lambda)*x[perm].
func (m Mix) Inputs(x *torch.Tensor) *torch.Tensor {
	if m.Perm == nil {
		return x
	}
	return x.MulScalar(m.Lambda).Add(x.IndexSelect(0, m.Perm).MulScalar(1 - m.Lambda))
}

// Loss returns lambda*loss(out, t) + (1-lambda)*loss(out, t[perm]), the
// authors' mixup_criterion.
func (m Mix) Loss(loss func(out, t *torch.Tensor) *torch.Tensor, out, t *torch.Tensor) *torch.Tensor {
	a := loss(out, t)
	if m.Perm == nil {
		return a
	}
	return a.MulScalar(m.Lambda).Add(loss(out, t.IndexSelect(0, m.Perm)).MulScalar(1 - m.Lambda))
}
