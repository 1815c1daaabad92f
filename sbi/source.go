package sbi

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lvnet-go/lvnet/augment"
)

func uniform(rng *rand.Rand, a, b float64) float64 { return a + (b-a)*rng.Float64() }

// rgbShift adds a shift to each colour channel, clipping to [0, 255]
// (albumentations' RGBShift).
func rgbShift(m *augment.Image, shift [3]int) {
	for i := 0; i < len(m.Pix); i += 3 {
		for c := 0; c < 3; c++ {
			m.Pix[i+c] = uint8(min(max(int(m.Pix[i+c])+shift[c], 0), 255))
		}
	}
}

// downUp resizes m down by an integer ratio with nearest-neighbour sampling
// and back up bilinearly (the SBI code's RandomDownScale).
func downUp(m *augment.Image, r int) (*augment.Image, error) {
	small, err := augment.ResizeNearest(m, max(m.W/r, 1), max(m.H/r, 1))
	if err != nil {
		return nil, err
	}
	return augment.Resize(small, m.W, m.H)
}

// sharpen applies albumentations' Sharpen: the 3x3 kernel
// (1-alpha)*identity + alpha*[[-1,-1,-1],[-1,8+lightness,-1],[-1,-1,-1]]
// with a reflect-101 border, rounding and clipping to 8 bits.
func sharpen(m *augment.Image, alpha, lightness float64) *augment.Image {
	var k [3][3]float64
	for i := range k {
		for j := range k[i] {
			k[i][j] = -alpha
		}
	}
	k[1][1] = (1 - alpha) + alpha*(8+lightness)
	out := augment.New(m.W, m.H, m.C)
	for y := 0; y < m.H; y++ {
		var rows [3]int
		for i := range rows {
			rows[i] = reflect101(y+i-1, m.H)
		}
		for x := 0; x < m.W; x++ {
			var cols [3]int
			for j := range cols {
				cols[j] = reflect101(x+j-1, m.W)
			}
			for c := 0; c < m.C; c++ {
				var s float64
				for i := 0; i < 3; i++ {
					for j := 0; j < 3; j++ {
						s += k[i][j] * float64(m.Pix[(rows[i]*m.W+cols[j])*m.C+c])
					}
				}
				out.Pix[(y*m.W+x)*m.C+c] = uint8(min(max(math.Round(s), 0), 255))
			}
		}
	}
	return out
}

// transformSource applies the SBI source augmentations to a copy of the
// face: RGB shift (p 0.3, ±20), brightness and contrast (±0.1), then either
// a random down-and-up scale (by 2 or 4) or a sharpening, evenly.
//
// The SBI code also applies HueSaturationValue with limits of ±0.3, which on
// 8-bit images shifts values by less than one level; it is left out.
func transformSource(face *augment.Image, rng *rand.Rand) (*augment.Image, error) {
	m := face.Clone()
	if rng.Float64() < 0.3 {
		var s [3]int
		for c := range s {
			s[c] = int(math.Round(uniform(rng, -20, 20)))
		}
		rgbShift(m, s)
	}
	alpha := 1 + uniform(rng, -0.1, 0.1)
	beta := uniform(rng, -0.1, 0.1)
	augment.BrightnessContrast(m, alpha, beta)
	if rng.IntN(2) == 0 {
		r := 2 << rng.IntN(2) // 2 or 4
		out, err := downUp(m, r)
		if err != nil {
			return nil, fmt.Errorf("source downscale: %w", err)
		}
		return out, nil
	}
	return sharpen(m, uniform(rng, 0.2, 0.5), uniform(rng, 0.5, 1.0)), nil
}
