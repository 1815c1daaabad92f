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
	gen, err := torch.NewGenerator(stepSeed(cfg.Seed, epoch, b.Index))
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
		k := torch.FromSlice(s, known, n, 1, 1, 1)
		target = t19.Mul(k).Add(k.MulScalar(100).SubScalar(100)).ToDevice(dev) // known ? t : -100
	}

	// Mixup as the authors do it: with probability MixupProb, lambda ~
	// Beta(alpha, alpha), mixed with a random permutation of the batch.
	lam := 1.0
	var perm *torch.Tensor
	if cfg.Mixup && !cfg.SSPSL && n > 1 {
		r, err := torch.Rand(s, gen, 1).Item()
		if err != nil {
			return StepStats{}, err
		}
		if r < cfg.MixupProb {
			if lam, err = torch.Beta(s, gen, cfg.MixupAlpha, cfg.MixupAlpha, 1).Item(); err != nil {
				return StepStats{}, err
			}
			perm = torch.Randperm(s, gen, n).ToDevice(dev)
			x = x.MulScalar(lam).Add(x.IndexSelect(0, perm).MulScalar(1 - lam))
		}
	}

	out := st.Model.Forward(nn.TrainCtx(gen), x)
	mixed := func(loss func(l, t *torch.Tensor) *torch.Tensor, l, t *torch.Tensor) *torch.Tensor {
		a := loss(l, t)
		if perm == nil {
			return a
		}
		return a.MulScalar(lam).Add(loss(l, t.IndexSelect(0, perm)).MulScalar(1 - lam))
	}
	lossCls := mixed(model.ClsLoss, out.Cls, labels)
	total := lossCls
	var lossSeg *torch.Tensor
	switch {
	case cfg.SSPSL:
		regions := torch.Zeros(s, n, 1, S, S)
		if b.Regions != nil {
			regions = torch.FromSlice(s, b.Regions, n, 1, S, S)
		}
		r19 := model.MaskTarget(regions, g).To(dt, dev)
		lossSeg, _ = model.SSPSL(out.Seg, out.Pro, r19, b.Labels)
		if epoch < cfg.SSPSLWarmEpochs {
			lossSeg = lossSeg.Add(realsTowardsZero(s, out.Seg, b.Labels))
		}
	case target != nil && anyMask:
		lossSeg = mixed(model.SegLoss, out.Seg, target)
	}
	if lossSeg != nil {
		total = total.Add(lossSeg)
	}
	st.Opt.ZeroGrad()
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
