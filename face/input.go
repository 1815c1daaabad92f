package face

import (
	"image"
	"math"
)

// sampler describes how a network input is cut from an image, following
// TensorFlow.js (face-api's preprocessing): a square canvas of side Side
// (source pixels) holds the image pixels of Valid at Origin (the canvas
// position of image point (0, 0) is -Origin) and zeros elsewhere; output
// pixel (i, j) is TensorFlow's legacy bilinear resize of the canvas
// (align_corners=false, half_pixel_centers=false): source (i*Scale,
// j*Scale), neighbours clamped to the canvas.
type sampler struct {
	Valid  image.Rectangle // image pixels that show; others read as 0
	Origin image.Point     // image coordinates of canvas pixel (0, 0)
	Side   int             // canvas side, for clamping
	Scale  float64         // canvas pixels per output pixel
	W, H   int             // output size
	// Mul and Add normalise: value = pixel*Mul + Add[channel].
	Mul float32
	Add [3]float32
	// Planar writes channel-major planes (CHW) instead of interleaved
	// pixels (HWC, for channels-last tensors).
	Planar bool
}

// tap is one axis of a bilinear sample: byte offsets of the two source
// pixels (-1 when outside the valid rectangle) and the weight of the second.
type tap struct {
	i0, i1 int
	f      float32
}

// fill writes the H x W x 3 samples (RGB) into dst, which must hold 3*H*W
// values: interleaved (HWC), or channel-major planes (CHW) when Planar.
func (s *sampler) fill(img *image.RGBA, dst []float32) {
	cols := make([]tap, s.W)
	for j := range cols {
		cols[j] = s.tap1(j, s.Valid.Min.X, s.Valid.Max.X, s.Origin.X, func(x int) int { return (x - img.Rect.Min.X) * 4 })
	}
	plane := s.W * s.H
	cs, ps := plane, 1 // strides of a channel and a pixel in dst
	if !s.Planar {
		cs, ps = 1, 3
	}
	for i := 0; i < s.H; i++ {
		r := s.tap1(i, s.Valid.Min.Y, s.Valid.Max.Y, s.Origin.Y, func(y int) int { return (y - img.Rect.Min.Y) * img.Stride })
		base := i * s.W
		for j, c := range cols {
			var px [4][3]float32 // tl, tr, bl, br
			for k, o := range [4][2]int{{r.i0, c.i0}, {r.i0, c.i1}, {r.i1, c.i0}, {r.i1, c.i1}} {
				if o[0] < 0 || o[1] < 0 {
					continue
				}
				p := img.Pix[o[0]+o[1]:]
				px[k] = [3]float32{float32(p[0]), float32(p[1]), float32(p[2])}
			}
			for ch := 0; ch < 3; ch++ {
				top := px[0][ch] + (px[1][ch]-px[0][ch])*c.f
				bot := px[2][ch] + (px[3][ch]-px[2][ch])*c.f
				v := top + (bot-top)*r.f
				dst[ch*cs+(base+j)*ps] = v*s.Mul + s.Add[ch]
			}
		}
	}
}

// tap1 returns the two source samples and the weight of the second along one
// axis for output index o.
func (s *sampler) tap1(o, lo, hi, origin int, off func(int) int) (t tap) {
	src := float64(o) * s.Scale
	c0 := int(math.Floor(src))
	c1 := int(math.Ceil(src))
	if c1 > s.Side-1 {
		c1 = s.Side - 1
	}
	t.f = float32(src - float64(c0))
	at := func(c int) int {
		p := c + origin
		if c >= s.Side || p < lo || p >= hi {
			return -1
		}
		return off(p)
	}
	t.i0, t.i1 = at(c0), at(c1)
	return t
}
