package model

import (
	"fmt"

	"github.com/lvnet-go/lvnet/torch"
)

// MaskTarget turns pixel masks (B x 1 x S x S, > 0 where forged) into the
// G x G patch targets of the localisation loss, as the authors' get_mask
// does: max pool with kernel = stride = S / G (integer division, no padding
// — their replicate pad is built but never applied), then > 0 -> 1. At 299 the
// pooled map is exactly 19 x 19; for sizes where it comes out larger, the
// first G rows and columns are kept.
func MaskTarget(mask *torch.Tensor, g int64) *torch.Tensor {
	s := mask.Shape()
	if len(s) != 4 {
		if err := mask.Err(); err != nil {
			return mask
		}
		return torch.Errorf("mask_target", "mask must be B x 1 x H x W, got %v", s)
	}
	k := s[2] / g
	if k < 1 {
		return torch.Errorf("mask_target", "mask side %d is smaller than the grid %d", s[2], g)
	}
	p := mask.MaxPool2d(torch.Sq(k), torch.Sq(k), torch.Sq(0), false)
	if ps := p.Shape(); len(ps) == 4 && (ps[2] > g || ps[3] > g) {
		p = p.Narrow(2, 0, g).Narrow(3, 0, g)
	}
	return p.GtScalar(0).ToDType(torch.Float32)
}

// ClsLoss is the cross entropy of B x 2 logits against int64 labels.
func ClsLoss(logits, labels *torch.Tensor) *torch.Tensor {
	return torch.CrossEntropy(logits, labels, nil, torch.ReduceMean)
}

// SegLoss is the patch cross entropy of B x 2 x G x G logits against B x 1 x G
// x G {0,1} targets, averaged over all patches.
func SegLoss(seg, target *torch.Tensor) *torch.Tensor {
	return torch.CrossEntropy(seg, target.Squeeze(1).ToDType(torch.Int64), nil, torch.ReduceMean)
}

// SSPSL is the semi-supervised patch self-labelling loss for data without
// masks (the authors' sspsl_loss): patch features are L2-normalised over
// channels; a fake image's patch gets pseudo-label 1 when it is closer
// (cosine) to the mean fake feature inside the landmark reference regions
// (summed, then divided by the number of ALL fake patches) than to the mean
// real patch feature; real patches get 0. The loss is the mean patch cross
// entropy against these targets, real patches first, then fake patches, each
// in (batch, row, col) order. labels are the batch's 0/1 labels; regions is
// B x 1 x G x G in {0,1}. It returns the loss and the int64 targets.
//
// A batch without real images labels fake patches by their region; one
// without fakes trains every patch towards 0.
func SSPSL(seg, pro, regions *torch.Tensor, labels []int64) (loss, targets *torch.Tensor) {
	for _, t := range []*torch.Tensor{seg, pro, regions} {
		if t.Err() != nil {
			return t, t
		}
	}
	if int64(len(labels)) != seg.Size(0) {
		e := torch.Errorf("sspsl", "%d labels for a batch of %d", len(labels), seg.Size(0))
		return e, e
	}
	var realIdx, fakeIdx []int64
	for i, l := range labels {
		if l > 0 {
			fakeIdx = append(fakeIdx, int64(i))
		} else {
			realIdx = append(realIdx, int64(i))
		}
	}
	s := seg.Scope()
	feas := pro.Normalize(2, 1, 1e-12)
	rows := func(t *torch.Tensor, idx []int64) *torch.Tensor {
		c := t.Size(1)
		return t.IndexSelect(0, torch.FromSlice(s, idx)).Permute(0, 2, 3, 1).Reshape(-1, c)
	}
	var inputs, tgts []*torch.Tensor
	var realMean *torch.Tensor
	if len(realIdx) > 0 {
		real := rows(feas, realIdx)
		realMean = real.Sum(true, 0).DivScalar(float64(real.Size(0)))
		rs := rows(seg, realIdx)
		inputs = append(inputs, rs)
		tgts = append(tgts, torch.Full(s, 0, torch.Int64, torch.CPU, rs.Size(0)))
	}
	if len(fakeIdx) > 0 {
		fake := rows(feas, fakeIdx)
		reg := rows(regions, fakeIdx) // N x 1
		var ft *torch.Tensor
		if realMean == nil {
			ft = reg.Squeeze(1).GtScalar(0).ToDType(torch.Int64)
		} else {
			fakeMean := fake.Mul(reg).Sum(true, 0).DivScalar(float64(fake.Size(0)))
			simReal := torch.CosineSimilarity(fake, realMean, 1, 1e-8)
			simFake := torch.CosineSimilarity(fake, fakeMean, 1, 1e-8)
			ft = simReal.Lt(simFake).ToDType(torch.Int64)
		}
		inputs = append(inputs, rows(seg, fakeIdx))
		tgts = append(tgts, ft.Detach())
	}
	if len(inputs) == 0 {
		e := torch.Errorf("sspsl", "empty batch")
		return e, e
	}
	targets = torch.Cat(0, tgts...)
	loss = torch.CrossEntropy(torch.Cat(0, inputs...), targets, nil, torch.ReduceMean)
	return loss, targets
}

// Losses are the supervised training losses of one batch.
type Losses struct {
	Cls, Seg, Total *torch.Tensor
}

// Criterion applies a loss to an output and its targets. Plain (nil)
// applies it directly; mixup's criterion mixes the loss against the targets
// and against the permuted targets.
type Criterion func(loss func(out, target *torch.Tensor) *torch.Tensor, out, target *torch.Tensor) *torch.Tensor

// Supervised is the paper's training loss, the one definition the training
// loop and SupervisedLoss share: ClsLoss on the class logits plus, when
// patchTarget is not nil, SegLoss of the patch map against it (-100 marks
// patches to ignore, see IgnoreUnknown), each through crit (nil: plain).
func Supervised(out Output, labels, patchTarget *torch.Tensor, crit Criterion) Losses {
	if crit == nil {
		crit = func(loss func(o, t *torch.Tensor) *torch.Tensor, o, t *torch.Tensor) *torch.Tensor { return loss(o, t) }
	}
	l := Losses{Cls: crit(ClsLoss, out.Cls, labels)}
	l.Total = l.Cls
	if patchTarget != nil && out.Seg != nil {
		l.Seg = crit(SegLoss, out.Seg, patchTarget)
		l.Total = l.Total.Add(l.Seg)
	}
	return l
}

// IgnoreUnknown returns patch targets (n x G x G, int64) with -100, the
// ignored class of SegLoss, for the samples whose mask is unknown
// (known[i] == 0; known is n x 1 x 1 x 1 of 0/1, int64): fakes without a mask
// train the class only.
func IgnoreUnknown(target, known *torch.Tensor) *torch.Tensor {
	return target.Mul(known).Add(known.MulScalar(100).SubScalar(100)) // known ? t : -100
}

// SupervisedLoss is the paper's loss with masks: cross entropy on the class
// logits plus patch cross entropy against MaskTarget(mask) (Supervised).
func (m *LVNet) SupervisedLoss(out Output, labels, mask *torch.Tensor) (Losses, error) {
	var target *torch.Tensor
	if out.Seg != nil {
		if mask == nil {
			l := Losses{Cls: ClsLoss(out.Cls, labels)}
			l.Total = l.Cls
			return l, fmt.Errorf("supervised loss: the model localises but no mask was given")
		}
		target = MaskTarget(mask, int64(m.Config.Grid()))
	}
	l := Supervised(out, labels, target, nil)
	return l, l.Total.Err()
}
