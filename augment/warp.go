package augment

import (
	"fmt"
	"math"
)

// affine is a 2-D affine map: x' = a[0]x + a[1]y + a[2], y' = a[3]x + a[4]y + a[5].
type affine [6]float64

var identity = affine{1, 0, 0, 0, 1, 0}

// compose returns a∘b (b applied first).
func (a affine) compose(b affine) affine {
	return affine{
		a[0]*b[0] + a[1]*b[3], a[0]*b[1] + a[1]*b[4], a[0]*b[2] + a[1]*b[5] + a[2],
		a[3]*b[0] + a[4]*b[3], a[3]*b[1] + a[4]*b[4], a[3]*b[2] + a[4]*b[5] + a[5],
	}
}

// invert returns the inverse map; ok is false when a is singular.
func (a affine) invert() (affine, bool) {
	det := a[0]*a[4] - a[1]*a[3]
	if det == 0 || math.IsNaN(det) || math.IsInf(det, 0) {
		return affine{}, false
	}
	i0, i1 := a[4]/det, -a[1]/det
	i3, i4 := -a[3]/det, a[0]/det
	return affine{i0, i1, -(i0*a[2] + i1*a[5]), i3, i4, -(i3*a[2] + i4*a[5])}, true
}

// step is one geometric transform: inv maps its output pixel coordinates
// (pixel centres at integers) to its input's; with bounded set, points
// outside the input (inW x inH) read as 0 (a constant border).
type step struct {
	inv      affine
	inW, inH int
	bounded  bool
}

// Warp records a chain of geometric transforms of a W x H image and applies
// them in one resampling pass (bilinear for images, nearest for masks), so an
// image and its masks see exactly the same geometry. The zero Warp is not
// usable; create one with NewWarp.
type Warp struct {
	srcW, srcH int
	w, h       int
	steps      []step
	err        error
}

// NewWarp starts a chain on a w x h image.
func NewWarp(w, h int) *Warp {
	g := &Warp{srcW: w, srcH: h, w: w, h: h}
	if w <= 0 || h <= 0 {
		g.err = fmt.Errorf("warp: bad source size %dx%d", w, h)
	}
	return g
}

// Size returns the size of the image the chain produces so far.
func (g *Warp) Size() (w, h int) { return g.w, g.h }

// Err returns the first error met while building the chain.
func (g *Warp) Err() error { return g.err }

func (g *Warp) push(inv affine, outW, outH int, bounded bool) {
	if g.err != nil {
		return
	}
	if outW <= 0 || outH <= 0 {
		g.err = fmt.Errorf("warp: bad output size %dx%d", outW, outH)
		return
	}
	g.steps = append(g.steps, step{inv: inv, inW: g.w, inH: g.h, bounded: bounded})
	g.w, g.h = outW, outH
}

// FlipH mirrors left-right.
func (g *Warp) FlipH() { g.push(affine{-1, 0, float64(g.w - 1), 0, 1, 0}, g.w, g.h, false) }

// FlipV mirrors top-bottom.
func (g *Warp) FlipV() { g.push(affine{1, 0, 0, 0, -1, float64(g.h - 1)}, g.w, g.h, false) }

// Rot90 rotates by k quarter turns counter-clockwise (numpy's rot90).
func (g *Warp) Rot90(k int) {
	w, h := float64(g.w), float64(g.h)
	switch ((k % 4) + 4) % 4 {
	case 1: // out(x, y) = in(W-1-y, x)
		g.push(affine{0, -1, w - 1, 1, 0, 0}, g.h, g.w, false)
	case 2:
		g.push(affine{-1, 0, w - 1, 0, -1, h - 1}, g.w, g.h, false)
	case 3: // out(x, y) = in(y, H-1-x)
		g.push(affine{0, 1, 0, -1, 0, h - 1}, g.h, g.w, false)
	}
}

// Crop keeps the rectangle [x0, x0+w) x [y0, y0+h); parts outside the
// current image read as 0.
func (g *Warp) Crop(x0, y0, w, h int) {
	outside := x0 < 0 || y0 < 0 || x0+w > g.w || y0+h > g.h
	g.push(affine{1, 0, float64(x0), 0, 1, float64(y0)}, w, h, outside)
}

// CenterCrop keeps the centred w x h rectangle (albumentations' CenterCrop
// offsets: (W-w)/2 rounded down).
func (g *Warp) CenterCrop(w, h int) { g.Crop((g.w-w)/2, (g.h-h)/2, w, h) }

// Resize scales to w x h with pixel-centre alignment (OpenCV's resize).
func (g *Warp) Resize(w, h int) {
	if w == g.w && h == g.h {
		return
	}
	sx, sy := float64(g.w)/float64(w), float64(g.h)/float64(h)
	g.push(affine{sx, 0, 0.5*sx - 0.5, 0, sy, 0.5*sy - 0.5}, w, h, false)
}

// Affine applies the forward map m (2x3, OpenCV's warpAffine convention:
// output(m·p) = input(p)) keeping the size, with a constant 0 border.
func (g *Warp) Affine(m [6]float64) {
	inv, ok := affine(m).invert()
	if !ok {
		if g.err == nil {
			g.err = fmt.Errorf("warp: singular affine map %v", m)
		}
		return
	}
	g.push(inv, g.w, g.h, true)
}

// RotationMatrix returns OpenCV's getRotationMatrix2D: rotation by angle
// degrees (counter-clockwise on screen) and scaling about (cx, cy).
func RotationMatrix(cx, cy, angle, scale float64) [6]float64 {
	s, c := math.Sincos(angle * math.Pi / 180)
	a, b := scale*c, scale*s
	return [6]float64{a, b, (1-a)*cx - b*cy, -b, a, b*cx + (1-a)*cy}
}

// plan is a compiled chain: src maps output pixels to source coordinates,
// bounds lists the constant-border checks.
type plan struct {
	src    affine
	bounds []bound
	plain  bool // src is the identity and there are no bounds
}

type bound struct {
	m    affine
	w, h float64
}

func (g *Warp) compile() plan {
	acc := identity
	var bs []bound
	for k := len(g.steps) - 1; k >= 0; k-- {
		s := g.steps[k]
		acc = s.inv.compose(acc)
		if s.bounded {
			bs = append(bs, bound{m: acc, w: float64(s.inW), h: float64(s.inH)})
		}
	}
	return plan{src: acc, bounds: bs, plain: acc == identity && len(bs) == 0 && g.w == g.srcW && g.h == g.srcH}
}

// inside reports whether output pixel (x, y) passes every border check.
func (p *plan) inside(x, y float64) bool {
	for i := range p.bounds {
		b := &p.bounds[i]
		bx := b.m[0]*x + b.m[1]*y + b.m[2]
		by := b.m[3]*x + b.m[4]*y + b.m[5]
		if bx < -0.5 || by < -0.5 || bx >= b.w-0.5 || by >= b.h-0.5 {
			return false
		}
	}
	return true
}

func (g *Warp) checkSrc(src *Image) error {
	if g.err != nil {
		return g.err
	}
	if err := src.check(); err != nil {
		return fmt.Errorf("warp: %w", err)
	}
	if src.W != g.srcW || src.H != g.srcH {
		return fmt.Errorf("warp: image is %dx%d, chain was built for %dx%d", src.W, src.H, g.srcW, g.srcH)
	}
	return nil
}

// floorInt is math.Floor for values well inside the int range.
func floorInt(v float64) int {
	i := int(v)
	if v < float64(i) {
		i--
	}
	return i
}

// Apply resamples src (bilinear, edges replicated; constant-border steps
// give 0) through the chain.
func (g *Warp) Apply(src *Image) (*Image, error) {
	if err := g.checkSrc(src); err != nil {
		return nil, err
	}
	p := g.compile()
	if p.plain {
		return src.Clone(), nil
	}
	out := New(g.w, g.h, src.C)
	C, sw, sh := src.C, src.W, src.H
	m := p.src
	for y := 0; y < g.h; y++ {
		fy := float64(y)
		xs := m[1]*fy + m[2]
		ys := m[4]*fy + m[5]
		row := out.Pix[y*g.w*C : (y+1)*g.w*C]
		for x := 0; x < g.w; x++ {
			sx, sy := xs, ys
			xs += m[0]
			ys += m[3]
			if len(p.bounds) > 0 && !p.inside(float64(x), fy) {
				continue
			}
			x0, y0 := floorInt(sx), floorInt(sy)
			ax, ay := float32(sx-float64(x0)), float32(sy-float64(y0))
			x1, y1 := x0+1, y0+1
			if x0 < 0 {
				x0 = 0
			} else if x0 >= sw {
				x0 = sw - 1
			}
			if x1 < 0 {
				x1 = 0
			} else if x1 >= sw {
				x1 = sw - 1
			}
			if y0 < 0 {
				y0 = 0
			} else if y0 >= sh {
				y0 = sh - 1
			}
			if y1 < 0 {
				y1 = 0
			} else if y1 >= sh {
				y1 = sh - 1
			}
			i00 := (y0*sw + x0) * C
			i01 := (y0*sw + x1) * C
			i10 := (y1*sw + x0) * C
			i11 := (y1*sw + x1) * C
			w00 := (1 - ax) * (1 - ay)
			w01 := ax * (1 - ay)
			w10 := (1 - ax) * ay
			w11 := ax * ay
			d := row[x*C : x*C+C]
			for c := 0; c < C; c++ {
				v := w00*float32(src.Pix[i00+c]) + w01*float32(src.Pix[i01+c]) +
					w10*float32(src.Pix[i10+c]) + w11*float32(src.Pix[i11+c])
				d[c] = uint8(v + 0.5)
			}
		}
	}
	return out, nil
}

// ApplyNearest resamples src through the chain with nearest-neighbour
// sampling (for masks).
func (g *Warp) ApplyNearest(src *Image) (*Image, error) {
	if err := g.checkSrc(src); err != nil {
		return nil, err
	}
	p := g.compile()
	if p.plain {
		return src.Clone(), nil
	}
	out := New(g.w, g.h, src.C)
	C, sw, sh := src.C, src.W, src.H
	m := p.src
	for y := 0; y < g.h; y++ {
		fy := float64(y)
		xs := m[1]*fy + m[2]
		ys := m[4]*fy + m[5]
		row := out.Pix[y*g.w*C : (y+1)*g.w*C]
		for x := 0; x < g.w; x++ {
			sx, sy := xs, ys
			xs += m[0]
			ys += m[3]
			if len(p.bounds) > 0 && !p.inside(float64(x), fy) {
				continue
			}
			xi, yi := floorInt(sx+0.5), floorInt(sy+0.5)
			if xi < 0 {
				xi = 0
			} else if xi >= sw {
				xi = sw - 1
			}
			if yi < 0 {
				yi = 0
			} else if yi >= sh {
				yi = sh - 1
			}
			copy(row[x*C:x*C+C], src.Pix[(yi*sw+xi)*C:(yi*sw+xi)*C+C])
		}
	}
	return out, nil
}

// Resize returns src scaled to w x h, bilinear (OpenCV's INTER_LINEAR
// geometry); same-size input is copied.
func Resize(src *Image, w, h int) (*Image, error) {
	if err := src.check(); err != nil {
		return nil, fmt.Errorf("resize: %w", err)
	}
	g := NewWarp(src.W, src.H)
	g.Resize(w, h)
	return g.Apply(src)
}

// ResizeNearest returns src scaled to w x h with nearest-neighbour sampling.
func ResizeNearest(src *Image, w, h int) (*Image, error) {
	if err := src.check(); err != nil {
		return nil, fmt.Errorf("resize: %w", err)
	}
	g := NewWarp(src.W, src.H)
	g.Resize(w, h)
	return g.ApplyNearest(src)
}
