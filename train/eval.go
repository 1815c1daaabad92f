package train

import (
	"context"
	"fmt"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
)

// MaskRes is the side at which evaluation keeps ground-truth masks for the
// pixel-level IoU: four times the patch grid (76 at 299), so that memory
// stays bounded on large test sets.
func MaskRes(m *model.LVNet) int { return 4 * m.Config.Grid() }

// Evaluate runs the model in eval mode over every batch of the loader (which
// must be an eval loader: no augmentation) and returns one record per sample:
// p_fake, the patch probability map and, when the dataset has masks, the mask
// at MaskRes.
func Evaluate(ctx context.Context, m *model.LVNet, l *data.Loader, dev torch.Device, bar *progress.Bar) ([]metrics.Record, error) {
	it := l.Epoch(0, 0)
	defer it.Close()
	var recs []metrics.Record
	g := m.Config.Grid()
	res := MaskRes(m)
	for {
		if err := ctx.Err(); err != nil {
			return recs, err
		}
		b, ok := it.Next()
		if !ok {
			break
		}
		pf, patches, err := Predict(m, b.Images, len(b.Labels), b.Size, dev)
		if err != nil {
			return recs, fmt.Errorf("evaluate batch %d: %w", b.Index, err)
		}
		plane := b.Size * b.Size
		for i := range b.Labels {
			r := metrics.Record{Input: b.Paths[i], Video: b.Videos[i], Label: int(b.Labels[i]), PFake: pf[i]}
			if patches != nil {
				r.Patch, r.Grid = patches[i], g
			}
			if b.HasMask != nil && b.HasMask[i] && patches != nil {
				r.Mask = areaDown(b.Masks[i*plane:(i+1)*plane], b.Size, res)
				r.MaskH, r.MaskW = res, res
			}
			recs = append(recs, r)
		}
		bar.Add(int64(len(b.Labels)))
	}
	if err := it.Err(); err != nil {
		return recs, err
	}
	return recs, nil
}

// Predict runs an eval forward pass on n normalised images (n x 3 x S x S)
// and returns p_fake = 1 - softmax(logits)[0] per image and, when the model
// localises, the GxG patch probabilities of forgery (softmax channel 1,
// row-major).
func Predict(m *model.LVNet, images []float32, n, size int, dev torch.Device) ([]float64, [][]float64, error) {
	var pf []float64
	var patches [][]float64
	err := torch.InferenceMode(func() error {
		s := torch.NewScope()
		defer s.Close()
		x := torch.FromSlice(s, images, int64(n), 3, int64(size), int64(size)).To(m.DType(), dev)
		out := m.Forward(nn.EvalCtx(), x)
		p, err := out.Cls.Softmax(1).Narrow(1, 0, 1).Float64s()
		if err != nil {
			return err
		}
		pf = make([]float64, n)
		for i := range p {
			pf[i] = 1 - p[i]
		}
		if out.Seg == nil {
			return nil
		}
		q, err := out.Seg.Softmax(1).Narrow(1, 1, 1).Float64s()
		if err != nil {
			return err
		}
		per := len(q) / n
		patches = make([][]float64, n)
		for i := range patches {
			patches[i] = q[i*per : (i+1)*per : (i+1)*per]
		}
		return nil
	})
	return pf, patches, err
}

// areaDown averages an s x s mask down to r x r (r <= s): the fraction of
// forged pixels in each cell. Metrics count a pixel as forged at >= 0.5 and a
// patch as forged when any of its cells is > 0, so both stay faithful.
func areaDown(mask []float32, s, r int) []float64 {
	out := make([]float64, r*r)
	cnt := make([]float64, r*r)
	for y := 0; y < s; y++ {
		ry := y * r / s
		for x := 0; x < s; x++ {
			i := ry*r + x*r/s
			out[i] += float64(mask[y*s+x])
			cnt[i]++
		}
	}
	for i := range out {
		if cnt[i] > 0 {
			out[i] /= cnt[i]
		}
	}
	return out
}
