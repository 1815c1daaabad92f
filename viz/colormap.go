// Package viz draws the pictures people look at: a face's patch forgery
// map upsampled smoothly and overlaid as a colour map on the original frame
// (with the face box, the score and a colour-scale legend), contact sheets
// of such pictures, and PNG files written atomically.
package viz

import (
	"image/color"
	"math"

	"github.com/lvnet-go/lvnet/metrics"
)

// Turbo maps v in [0, 1] (clamped; NaN is 0) to the "turbo" colour map:
// dark blue at 0 through cyan, green and yellow to dark red at 1. It uses
// the polynomial approximation published with the map by Google (Anton
// Mikhailov, colour design; Ruofei Du, approximation; Apache-2.0).
func Turbo(v float64) color.RGBA {
	if !(v > 0) {
		v = 0
	}
	if v > 1 {
		v = 1
	}
	v2, v3 := v*v, v*v*v
	v4, v5 := v2*v2, v2*v3
	r := 0.13572138 + 4.61539260*v - 42.66032258*v2 + 132.13108234*v3 - 152.94239396*v4 + 59.28637943*v5
	g := 0.09140261 + 2.19418839*v + 4.84296658*v2 - 14.18503333*v3 + 4.27729857*v4 + 2.82956604*v5
	b := 0.10667330 + 12.64194608*v - 60.58204836*v2 + 110.36276771*v3 - 89.90310912*v4 + 27.34824973*v5
	return color.RGBA{R: unit8(r), G: unit8(g), B: unit8(b), A: 255}
}

// unit8 converts a [0, 1] intensity (clamped) to 0..255.
func unit8(x float64) uint8 {
	return uint8(math.Round(255 * math.Max(0, math.Min(1, x))))
}

// Heatmap upsamples a g x g row-major probability map to w x h (row-major,
// h rows of w values) by bilinear interpolation with PyTorch's
// align_corners=False semantics, so each patch's value sits at its centre
// and the map varies smoothly in between.
func Heatmap(grid []float64, g int, w, h int) ([]float64, error) {
	return metrics.Bilinear(grid, g, g, h, w)
}
