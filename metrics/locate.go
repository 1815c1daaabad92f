package metrics

import (
	"errors"
	"fmt"
	"math"
)

// Bilinear resizes a row-major sh x sw map to dh x dw by bilinear
// interpolation with the semantics of PyTorch's
// F.interpolate(mode="bilinear", align_corners=False): output pixel centres
// are mapped back onto the input grid, coordinates below 0 are clamped to 0,
// and the last row and column are replicated past the edge.
func Bilinear(src []float64, sh, sw, dh, dw int) ([]float64, error) {
	if sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 {
		return nil, fmt.Errorf("bilinear: sizes %dx%d -> %dx%d must be positive", sh, sw, dh, dw)
	}
	if len(src) != sh*sw {
		return nil, fmt.Errorf("bilinear: map has %d values, want %dx%d=%d", len(src), sh, sw, sh*sw)
	}
	ys0, ys1, yl := bilinearIndex(sh, dh)
	xs0, xs1, xl := bilinearIndex(sw, dw)
	dst := make([]float64, dh*dw)
	for y := range dh {
		r0, r1, ly := src[ys0[y]*sw:], src[ys1[y]*sw:], yl[y]
		row := dst[y*dw : (y+1)*dw]
		for x := range dw {
			a, b, lx := xs0[x], xs1[x], xl[x]
			top := (1-lx)*r0[a] + lx*r0[b]
			bot := (1-lx)*r1[a] + lx*r1[b]
			row[x] = (1-ly)*top + ly*bot
		}
	}
	return dst, nil
}

// bilinearIndex returns, for each of the out output positions, the two
// input indices to blend and the weight of the second one.
func bilinearIndex(in, out int) (i0, i1 []int, lambda []float64) {
	i0 = make([]int, out)
	i1 = make([]int, out)
	lambda = make([]float64, out)
	scale := float64(in) / float64(out)
	for o := range out {
		s := (float64(o)+0.5)*scale - 0.5
		if s < 0 {
			s = 0
		}
		k := int(s)
		if k > in-1 {
			k = in - 1
		}
		i0[o] = k
		i1[o] = min(k+1, in-1)
		lambda[o] = s - float64(k)
		if i1[o] == k {
			lambda[o] = 0
		}
	}
	return i0, i1, lambda
}

// TargetMap reduces an h x w forgery mask to the g x g patch target the
// model is trained on, exactly like the authors' code (LVNet.get_mask):
// max-pooling with kernel and stride h/g (w/g across), no padding, so the
// last h mod g rows and w mod g columns are ignored (299 -> 19 uses 285
// pixels, 15 per patch); a patch is 1 when any mask pixel in it is > 0.
// (spec/lvnet.md describes a replicate-padded 16x16 pooling instead; the
// golden train_mask19.npy of the authors' code confirms this version.)
func TargetMap(mask []float64, h, w, g int) ([]float64, error) {
	if g <= 0 || h < g || w < g {
		return nil, fmt.Errorf("target map: mask %dx%d cannot be pooled to %dx%d", h, w, g, g)
	}
	if len(mask) != h*w {
		return nil, fmt.Errorf("target map: mask has %d values, want %dx%d=%d", len(mask), h, w, h*w)
	}
	kh, kw := h/g, w/g
	t := make([]float64, g*g)
	for i := range g {
		for j := range g {
		cell:
			for y := i * kh; y < (i+1)*kh; y++ {
				for _, v := range mask[y*w+j*kw : y*w+(j+1)*kw] {
					if v > 0 {
						t[i*g+j] = 1
						break cell
					}
				}
			}
		}
	}
	return t, nil
}

// Overlap accumulates the intersection and union of predicted and true
// forged regions over many maps, for a dataset-wide (micro-averaged)
// intersection over union. The zero value is ready to use.
type Overlap struct {
	Inter, Union int
}

// Add counts one map: a position is predicted forged when pred > thr and
// truly forged when truth >= 0.5.
func (o *Overlap) Add(pred, truth []float64, thr float64) error {
	if len(pred) != len(truth) {
		return fmt.Errorf("iou: prediction has %d values, truth %d", len(pred), len(truth))
	}
	for i, p := range pred {
		if math.IsNaN(p) {
			return fmt.Errorf("iou: prediction %d is NaN", i)
		}
		a, b := p > thr, truth[i] >= 0.5
		if a && b {
			o.Inter++
		}
		if a || b {
			o.Union++
		}
	}
	return nil
}

// IoU returns Inter/Union; ok is false when both the prediction and the
// truth were empty everywhere (the ratio is undefined).
func (o Overlap) IoU() (iou float64, ok bool) {
	if o.Union == 0 {
		return 0, false
	}
	return float64(o.Inter) / float64(o.Union), true
}

// PatchAUC is the ROC AUC over all patches of all maps pooled together:
// preds[i] holds predicted forgery probabilities and targets[i] the binary
// truth (>= 0.5 is forged) of the same patches.
func PatchAUC(preds, targets [][]float64) (float64, error) {
	if len(preds) != len(targets) {
		return 0, fmt.Errorf("patch auc: %d predicted maps but %d targets", len(preds), len(targets))
	}
	var scores []float64
	var labels []int
	for i, p := range preds {
		if len(p) != len(targets[i]) {
			return 0, fmt.Errorf("patch auc: map %d has %d predictions but %d targets", i, len(p), len(targets[i]))
		}
		scores = append(scores, p...)
		for _, t := range targets[i] {
			l := 0
			if t >= 0.5 {
				l = 1
			}
			labels = append(labels, l)
		}
	}
	if len(scores) == 0 {
		return 0, errors.New("patch auc: no patches")
	}
	auc, err := AUC(scores, labels)
	if err != nil {
		return 0, fmt.Errorf("patch %w", err)
	}
	return auc, nil
}
