package augment

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Config sets the probabilities and ranges of the training augmentations.
// A probability of 0 disables a transform, 1 always applies it. Paper
// returns the authors' settings.
type Config struct {
	// Size is the side of the square output.
	Size int

	// ResizeFirst resizes the whole input to Size x Size before the
	// geometric transforms, so that they act on the face as the detector
	// feeds it to the model (the authors' 300-pixel crops at 299 need no
	// resize; without it a larger crop is centre-cropped to Size).
	ResizeFirst bool

	// FlipP: flip horizontally, vertically or both (one of the three,
	// uniformly; albumentations' Flip); with FlipHOnly only horizontally.
	FlipP     float64
	FlipHOnly bool
	// Rotate90P: rotate by 0-3 quarter turns, uniformly.
	Rotate90P float64
	// ResizedCropP: crop a square of ResizedCropScale (fraction of the area)
	// at a random place and resize it to Size.
	ResizedCropP     float64
	ResizedCropScale [2]float64
	// ShiftScaleRotateP: shift by up to ShiftLimit of the size, scale by
	// 1±ScaleLimit, rotate by up to ±RotateLimit degrees; borders 0.
	ShiftScaleRotateP                   float64
	ShiftLimit, ScaleLimit, RotateLimit float64

	// GrayP: replace colours by luma.
	GrayP float64
	// JPEGP: re-compress as JPEG of a quality drawn from JPEGQuality
	// (inclusive).
	JPEGP       float64
	JPEGQuality [2]int
	// BlurP: 3x3 Gaussian blur.
	BlurP float64
	// NoiseP: Gaussian noise of variance drawn from NoiseVar.
	NoiseP   float64
	NoiseVar [2]float64
	// DownscaleP: resize the output down by a factor drawn from
	// DownscaleRange and back up (low-resolution faces).
	DownscaleP     float64
	DownscaleRange [2]float64
	// ColorP: one of brightness-contrast (±0.2 each), FancyPCA (alpha
	// 0.1) or hue/saturation/value shift (±20, ±30, ±20), uniformly.
	ColorP float64
}

// Paper returns the augmentation settings of the authors' code
// (datasets/factory.py) for a size x size output.
func Paper(size int) Config {
	return Config{
		Size:              size,
		FlipP:             0.5,
		Rotate90P:         0.5,
		ResizedCropP:      0.4,
		ResizedCropScale:  [2]float64{0.3, 1},
		ShiftScaleRotateP: 0.5,
		ShiftLimit:        0.0625,
		ScaleLimit:        0.2,
		RotateLimit:       45,
		GrayP:             0.1,
		JPEGP:             0.3,
		JPEGQuality:       [2]int{60, 100},
		BlurP:             0.05,
		NoiseP:            0.1,
		NoiseVar:          [2]float64{10, 50},
		ColorP:            0.5,
	}
}

// Light returns milder augmentations for training a small network from
// scratch: horizontal flips only (faces are upright at inference), small
// crops, shifts and rotations, and the compression, resolution, noise and
// colour changes that photos and videos bring.
func Light(size int) Config {
	return Config{
		Size:              size,
		ResizeFirst:       true,
		FlipP:             0.5,
		FlipHOnly:         true,
		ResizedCropP:      0.2,
		ResizedCropScale:  [2]float64{0.7, 1},
		ShiftScaleRotateP: 0.3,
		ShiftLimit:        0.05,
		ScaleLimit:        0.1,
		RotateLimit:       10,
		GrayP:             0.05,
		JPEGP:             0.3,
		JPEGQuality:       [2]int{60, 100},
		BlurP:             0.05,
		NoiseP:            0.05,
		NoiseVar:          [2]float64{5, 20},
		DownscaleP:        0.15,
		DownscaleRange:    [2]float64{0.5, 0.9},
		ColorP:            0.3,
	}
}

// validate reports settings that cannot be drawn from.
func (c *Config) validate() error {
	switch {
	case c.Size <= 0:
		return fmt.Errorf("augment: output size %d", c.Size)
	case c.JPEGP > 0 && (c.JPEGQuality[0] < 1 || c.JPEGQuality[1] > 100 || c.JPEGQuality[1] < c.JPEGQuality[0]):
		return fmt.Errorf("augment: JPEG quality range %v", c.JPEGQuality)
	case c.ResizedCropP > 0 && (c.ResizedCropScale[0] <= 0 || c.ResizedCropScale[1] < c.ResizedCropScale[0]):
		return fmt.Errorf("augment: resized-crop scale range %v", c.ResizedCropScale)
	case c.NoiseP > 0 && (c.NoiseVar[0] < 0 || c.NoiseVar[1] < c.NoiseVar[0]):
		return fmt.Errorf("augment: noise variance range %v", c.NoiseVar)
	case c.DownscaleP > 0 && (c.DownscaleRange[0] <= 0 || c.DownscaleRange[1] > 1 || c.DownscaleRange[1] < c.DownscaleRange[0]):
		return fmt.Errorf("augment: downscale range %v", c.DownscaleRange)
	}
	return nil
}

func uniform(rng *rand.Rand, a, b float64) float64 { return a + (b-a)*rng.Float64() }

// happens draws a Bernoulli(p) event (p <= 0 draws nothing from rng).
func happens(rng *rand.Rand, p float64) bool {
	if p <= 0 {
		return false
	}
	return rng.Float64() < p
}

// Geometry draws the geometric transforms for a w x h input and returns the
// chain producing a Size x Size output: flip, rotate90, random resized crop,
// shift-scale-rotate, then a centre crop to Size (or a resize when the
// image is smaller than Size).
func (c *Config) Geometry(rng *rand.Rand, w, h int) *Warp {
	g := NewWarp(w, h)
	if c.ResizeFirst && (w != c.Size || h != c.Size) {
		g.Resize(c.Size, c.Size)
	}
	if happens(rng, c.FlipP) {
		if c.FlipHOnly {
			g.FlipH()
		} else {
			switch rng.IntN(3) {
			case 0:
				g.FlipH()
				g.FlipV()
			case 1:
				g.FlipV()
			default:
				g.FlipH()
			}
		}
	}
	if happens(rng, c.Rotate90P) {
		g.Rot90(rng.IntN(4))
	}
	if happens(rng, c.ResizedCropP) {
		c.resizedCrop(rng, g)
	}
	if happens(rng, c.ShiftScaleRotateP) {
		w, h := g.Size()
		angle := uniform(rng, -c.RotateLimit, c.RotateLimit)
		scale := uniform(rng, 1-c.ScaleLimit, 1+c.ScaleLimit)
		dx := uniform(rng, -c.ShiftLimit, c.ShiftLimit)
		dy := uniform(rng, -c.ShiftLimit, c.ShiftLimit)
		m := RotationMatrix(float64(w)/2, float64(h)/2, angle, scale)
		m[2] += dx * float64(w)
		m[5] += dy * float64(h)
		g.Affine(m)
	}
	c.fit(g)
	return g
}

// fit ends the chain at Size x Size: centre crop when the image is large
// enough, else a resize.
func (c *Config) fit(g *Warp) {
	w, h := g.Size()
	if w >= c.Size && h >= c.Size {
		g.CenterCrop(c.Size, c.Size)
	} else {
		g.Resize(c.Size, c.Size)
	}
}

// resizedCrop is albumentations' RandomResizedCrop with ratio 1: ten tries
// to place a square of a random area fraction, else the central square.
func (c *Config) resizedCrop(rng *rand.Rand, g *Warp) {
	w, h := g.Size()
	area := float64(w * h)
	for try := 0; try < 10; try++ {
		side := int(math.Round(math.Sqrt(uniform(rng, c.ResizedCropScale[0], c.ResizedCropScale[1]) * area)))
		if side > 0 && side <= w && side <= h {
			y0 := rng.IntN(h - side + 1)
			x0 := rng.IntN(w - side + 1)
			g.Crop(x0, y0, side, side)
			g.Resize(c.Size, c.Size)
			return
		}
	}
	side := min(w, h)
	g.Crop((w-side)/2, (h-side)/2, side, side)
	g.Resize(c.Size, c.Size)
}

// Photometric draws and applies the image-only transforms to a 3-channel
// img, returning the result (img itself or a new image).
func (c *Config) Photometric(rng *rand.Rand, img *Image) (*Image, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if happens(rng, c.GrayP) {
		ToGray(img)
	}
	if happens(rng, c.JPEGP) {
		q := c.JPEGQuality[0] + rng.IntN(c.JPEGQuality[1]-c.JPEGQuality[0]+1)
		out, err := JPEG(img, q)
		if err != nil {
			return nil, err
		}
		img = out
	}
	if happens(rng, c.BlurP) {
		GaussianBlur3(img)
	}
	if happens(rng, c.DownscaleP) {
		f := uniform(rng, c.DownscaleRange[0], c.DownscaleRange[1])
		sw, sh := max(1, int(math.Round(float64(img.W)*f))), max(1, int(math.Round(float64(img.H)*f)))
		small, err := Resize(img, sw, sh)
		if err != nil {
			return nil, err
		}
		if img, err = Resize(small, img.W, img.H); err != nil {
			return nil, err
		}
	}
	if happens(rng, c.NoiseP) {
		GaussianNoise(img, rng, math.Sqrt(uniform(rng, c.NoiseVar[0], c.NoiseVar[1])))
	}
	if happens(rng, c.ColorP) {
		switch rng.IntN(3) {
		case 0:
			alpha := 1 + uniform(rng, -0.2, 0.2)
			beta := uniform(rng, -0.2, 0.2)
			BrightnessContrast(img, alpha, beta)
		case 1:
			FancyPCA(img, rng.NormFloat64()*0.1)
		default:
			h := uniform(rng, -20, 20)
			s := uniform(rng, -30, 30)
			v := uniform(rng, -20, 20)
			ShiftHSV(img, h, s, v)
		}
	}
	return img, nil
}

// Apply augments img (3 channels) and its masks (1 channel each, same size
// as img; nil entries stay nil): the geometric chain on all of them
// (bilinear for img, nearest for masks), then the photometric transforms on
// img. The results are Size x Size.
func (c *Config) Apply(rng *rand.Rand, img *Image, masks ...*Image) (*Image, []*Image, error) {
	if err := c.validate(); err != nil {
		return nil, nil, err
	}
	if err := img.check(); err != nil {
		return nil, nil, fmt.Errorf("augment: %w", err)
	}
	for i, m := range masks {
		if m == nil {
			continue
		}
		if err := m.check(); err != nil {
			return nil, nil, fmt.Errorf("augment: mask %d: %w", i, err)
		}
		if m.W != img.W || m.H != img.H {
			return nil, nil, fmt.Errorf("augment: mask %d is %dx%d, image %dx%d", i, m.W, m.H, img.W, img.H)
		}
	}
	g := c.Geometry(rng, img.W, img.H)
	out, err := g.Apply(img)
	if err != nil {
		return nil, nil, fmt.Errorf("augment: %w", err)
	}
	outMasks := make([]*Image, len(masks))
	for i, m := range masks {
		if m == nil {
			continue
		}
		if outMasks[i], err = g.ApplyNearest(m); err != nil {
			return nil, nil, fmt.Errorf("augment: mask %d: %w", i, err)
		}
	}
	if out, err = c.Photometric(rng, out); err != nil {
		return nil, nil, fmt.Errorf("augment: %w", err)
	}
	return out, outMasks, nil
}
