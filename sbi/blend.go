package sbi

import (
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"

	"github.com/lvnet-go/lvnet/augment"
	"github.com/lvnet-go/lvnet/face"
)

// Options tune Blend. The zero value selects the settings of the SBI code.
type Options struct {
	// Hulls lists the initial mask shapes drawn from, uniformly; nil
	// selects all four (random_get_hull).
	Hulls []Hull
	// BlendRatios lists the blend ratios drawn from, uniformly; each in
	// (0, 1]. Nil selects 0.25, 0.5, 0.75, 1, 1, 1 (dynamic_blend).
	BlendRatios []float64
	// Shift is the largest shift of the source (and its mask) as a
	// fraction of the image width and height; zero selects 0.03 and 0.015,
	// negative values disable the shift.
	Shift [2]float64
	// Scale resizes the source (and its mask) about the image centre by a
	// factor drawn from [Scale, 1/Scale]; 0 selects 0.95, 1 disables it.
	Scale float64
	// Deform is the largest displacement of the mask deformation (a smooth
	// random field), as a fraction of the landmarks' extent; 0 selects
	// 0.03, negative disables it.
	Deform float64
	// NoColor skips the colour, contrast and sharpness changes of the
	// source (for inspection: the blend then only shows through the
	// shift and resize).
	NoColor bool
}

var defaultRatios = []float64{0.25, 0.5, 0.75, 1, 1, 1}

// resolved returns the options with defaults filled in and disabled
// settings zeroed.
func (o Options) resolved() (Options, error) {
	if o.Hulls == nil {
		o.Hulls = allHulls
	}
	for _, h := range o.Hulls {
		if _, ok := hullNames[h]; !ok {
			return o, fmt.Errorf("sbi: unknown hull %d", int(h))
		}
	}
	if len(o.Hulls) == 0 {
		return o, errors.New("sbi: empty hull list")
	}
	if o.BlendRatios == nil {
		o.BlendRatios = defaultRatios
	}
	if len(o.BlendRatios) == 0 {
		return o, errors.New("sbi: empty blend ratio list")
	}
	for _, r := range o.BlendRatios {
		if !(r > 0 && r <= 1) {
			return o, fmt.Errorf("sbi: blend ratio %v is not in (0, 1]", r)
		}
	}
	def := [2]float64{0.03, 0.015}
	for i := range o.Shift {
		switch s := o.Shift[i]; {
		case s == 0:
			o.Shift[i] = def[i]
		case s < 0:
			o.Shift[i] = 0
		case s > 0.5 || math.IsNaN(s):
			return o, fmt.Errorf("sbi: shift %v is more than half the image", s)
		}
	}
	switch {
	case o.Scale == 0:
		o.Scale = 0.95
	case !(o.Scale > 0.5 && o.Scale <= 1):
		return o, fmt.Errorf("sbi: scale %v is not in (0.5, 1]", o.Scale)
	}
	switch {
	case o.Deform == 0:
		o.Deform = 0.03
	case o.Deform < 0:
		o.Deform = 0
	case o.Deform > 0.25 || math.IsNaN(o.Deform):
		return o, fmt.Errorf("sbi: deform %v is more than 0.25", o.Deform)
	}
	return o, nil
}

// Blend makes a self-blended image of face: the face with a transformed
// copy of itself blended in through a mask drawn from its 68 landmarks
// (image coordinates, iBUG order). It returns the image and its soft mask
// (0-255: the weight of the source in each pixel). The image equals face
// exactly wherever the mask is 0. The result depends only on face,
// landmarks, options and the draws from rng.
//
// Steps (the SBI code's self_blending): the initial mask is one of the hulls
// of Options.Hulls; the source gets its colour, contrast and sharpness
// changes (see transformSource); source and mask are shifted and resized
// together; the mask is deformed by a smooth random field; the blend mask
// is then made at the SBI code's resolution (the landmarks' extent mapped
// to 96-128 pixels across), blurred, cut back to where the blur kept its
// full value (an erosion), blurred again (soft edges reaching outwards) and
// scaled by a blend ratio; finally the image is target + mask·(source −
// target), with the mask rounded to 8 bits first so that the returned mask
// is exactly the one used.
func Blend(img *image.RGBA, landmarks [face.NumLandmarks][2]float32, rng *rand.Rand, opts Options) (*image.RGBA, *image.Gray, error) {
	o, err := opts.resolved()
	if err != nil {
		return nil, nil, err
	}
	if img == nil || img.Rect.Empty() {
		return nil, nil, errors.New("sbi: empty face image")
	}
	if rng == nil {
		return nil, nil, errors.New("sbi: nil random source")
	}
	target := augment.FromRGBA(img)
	w, h := target.W, target.H
	lm := make([]pt, len(landmarks))
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for i, p := range landmarks {
		x, y := float64(p[0])-float64(img.Rect.Min.X), float64(p[1])-float64(img.Rect.Min.Y)
		if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
			return nil, nil, fmt.Errorf("sbi: landmark %d is not finite", i)
		}
		if x < -float64(w) || x > 2*float64(w) || y < -float64(h) || y > 2*float64(h) {
			return nil, nil, fmt.Errorf("sbi: landmark %d at (%.0f, %.0f) is far outside the %dx%d image", i, x, y, w, h)
		}
		lm[i] = pt{x, y}
		minX, maxX = math.Min(minX, x), math.Max(maxX, x)
		minY, maxY = math.Min(minY, y), math.Max(maxY, y)
	}
	lmW, lmH := maxX-minX, maxY-minY
	if lmW < 8 || lmH < 8 {
		return nil, nil, fmt.Errorf("sbi: landmarks span %.1fx%.1f pixels, too small for a blend mask", lmW, lmH)
	}

	// Initial mask.
	kind := o.Hulls[rng.IntN(len(o.Hulls))]
	mask := &augment.Image{W: w, H: h, C: 1, Pix: hullMask(lm, kind, w, h)}
	if empty(mask.Pix) {
		return nil, nil, fmt.Errorf("sbi: the %s hull of the landmarks lies outside the %dx%d image", kind, w, h)
	}

	// Source: colour changes, then the same shift and resize as the mask.
	source := target
	if !o.NoColor {
		if source, err = transformSource(target, rng); err != nil {
			return nil, nil, fmt.Errorf("sbi: %w", err)
		}
	}
	tx := uniform(rng, -o.Shift[0], o.Shift[0]) * float64(w)
	ty := uniform(rng, -o.Shift[1], o.Shift[1]) * float64(h)
	s := uniform(rng, o.Scale, 1/o.Scale)
	if tx != 0 || ty != 0 || s != 1 {
		m := augment.RotationMatrix(float64(w)/2-0.5, float64(h)/2-0.5, 0, s)
		m[2] += tx
		m[5] += ty
		g := augment.NewWarp(w, h)
		g.Affine(m)
		if source, err = g.Apply(source); err != nil {
			return nil, nil, fmt.Errorf("sbi: shift source: %w", err)
		}
		// Where the shift uncovers the border, the source has no pixels:
		// take the target's rather than black.
		ones := augment.New(w, h, 1)
		for i := range ones.Pix {
			ones.Pix[i] = 1
		}
		valid, err := g.ApplyNearest(ones)
		if err != nil {
			return nil, nil, fmt.Errorf("sbi: shift source: %w", err)
		}
		for i, v := range valid.Pix {
			if v == 0 {
				copy(source.Pix[3*i:3*i+3], target.Pix[3*i:3*i+3])
			}
		}
		if mask, err = g.ApplyNearest(mask); err != nil {
			return nil, nil, fmt.Errorf("sbi: shift mask: %w", err)
		}
	}

	// Deformation of the mask.
	if amp := o.Deform * math.Max(lmW, lmH); amp > 0 {
		spacing := max(4, int(math.Round(math.Max(lmW, lmH)/8)))
		mask.Pix = deform(mask.Pix, w, h, amp, spacing, rng)
	}

	// Blend mask at the SBI code's resolution: there the face crop, with
	// its margins, is twice the landmarks' width and 2.4 times their
	// height, and is resized to 192-256 pixels per side.
	sizeH := 192 + rng.IntN(65)
	sizeW := 192 + rng.IntN(65)
	sw := max(8, int(math.Round(float64(w)*float64(sizeW)/(2*lmW))))
	sh := max(8, int(math.Round(float64(h)*float64(sizeH)/(2.4*lmH))))
	k1 := 5 + 2*rng.IntN(11) // 5, 7, ..., 25
	k2 := 5 + 2*rng.IntN(11)
	sigma2 := float64(5 + rng.IntN(41))
	full := newPlane(w, h)
	for i, v := range mask.Pix {
		full.p[i] = float32(v) / 255
	}
	small := full.resize(sw, sh).blur(k1, 0)
	mx := small.max()
	if mx == 0 {
		return nil, nil, errors.New("sbi: the blend mask vanished (landmarks too close to the image border?)")
	}
	small.scale(1 / mx)
	kept := false
	for _, v := range small.p {
		if v >= 1-1e-6 {
			kept = true
			break
		}
	}
	if kept { // erosion: keep only where the blur kept its full value
		for i, v := range small.p {
			if v < 1-1e-6 {
				small.p[i] = 0
			}
		}
	}
	small = small.blur(k2, sigma2)
	small.scale(1 / small.max())
	soft := small.resize(w, h)

	ratio := o.BlendRatios[rng.IntN(len(o.BlendRatios))]
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	nonzero := false
	for i, v := range soft.p {
		a := uint8(min(max(math.Round(float64(v)*ratio*255), 0), 255))
		gray.Pix[i] = a
		nonzero = nonzero || a > 0
		f := float64(a) / 255
		for c := 0; c < 3; c++ {
			t := float64(target.Pix[3*i+c])
			out.Pix[4*i+c] = uint8(min(max(math.Round(t+f*(float64(source.Pix[3*i+c])-t)), 0), 255))
		}
		out.Pix[4*i+3] = 255
	}
	if !nonzero {
		return nil, nil, errors.New("sbi: empty blend mask")
	}
	return out, gray, nil
}

func empty(p []uint8) bool {
	for _, v := range p {
		if v != 0 {
			return false
		}
	}
	return true
}

// deform moves a binary w x h mask by a smooth random displacement field:
// independent uniform displacements in [-amp, amp] on a grid of the given
// spacing, interpolated bilinearly (so no pixel moves by more than amp in
// x or y), sampled nearest-neighbour with zeros outside.
func deform(m []uint8, w, h int, amp float64, spacing int, rng *rand.Rand) []uint8 {
	gw, gh := w/spacing+2, h/spacing+2
	dx := make([]float64, gw*gh)
	dy := make([]float64, gw*gh)
	for i := range dx {
		dx[i] = uniform(rng, -amp, amp)
		dy[i] = uniform(rng, -amp, amp)
	}
	at := func(f []float64, x, y int) float64 {
		gx, gy := float64(x)/float64(spacing), float64(y)/float64(spacing)
		i, j := int(gx), int(gy)
		fx, fy := gx-float64(i), gy-float64(j)
		top := f[j*gw+i] + (f[j*gw+i+1]-f[j*gw+i])*fx
		bot := f[(j+1)*gw+i] + (f[(j+1)*gw+i+1]-f[(j+1)*gw+i])*fx
		return top + (bot-top)*fy
	}
	out := make([]uint8, len(m))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			sx := int(math.Round(float64(x) + at(dx, x, y)))
			sy := int(math.Round(float64(y) + at(dy, x, y)))
			if sx >= 0 && sx < w && sy >= 0 && sy < h {
				out[y*w+x] = m[sy*w+sx]
			}
		}
	}
	return out
}
