// Package augment implements the training augmentations of LVNet (the
// albumentations pipeline of the authors' code) on 8-bit images: geometric
// transforms applied identically to an image and its masks (flips, 90-degree
// rotations, random resized crop, shift-scale-rotate, center crop or resize),
// then photometric ones on the image only (to-gray, JPEG re-compression,
// Gaussian blur, Gaussian noise, one of brightness-contrast / FancyPCA /
// hue-saturation-value). Every random choice comes from a caller's
// *rand.Rand, so a seed fixes the result.
//
// Images are interleaved 8-bit planes ([]uint8), not image.Image: the
// augmentations run on every sample of every training step.
package augment

import (
	"fmt"
	"image"
)

// Image is an 8-bit image with C interleaved channels: the value of channel
// c at (x, y) is Pix[(y*W+x)*C+c]. Colour images have C = 3 (R, G, B),
// masks C = 1.
type Image struct {
	W, H, C int
	Pix     []uint8
}

// New returns a zeroed w x h image with c channels.
func New(w, h, c int) *Image {
	return &Image{W: w, H: h, C: c, Pix: make([]uint8, w*h*c)}
}

// Clone returns a deep copy of m.
func (m *Image) Clone() *Image {
	p := make([]uint8, len(m.Pix))
	copy(p, m.Pix)
	return &Image{W: m.W, H: m.H, C: m.C, Pix: p}
}

// check reports whether m is well formed.
func (m *Image) check() error {
	if m == nil {
		return fmt.Errorf("nil image")
	}
	if m.W <= 0 || m.H <= 0 || m.C <= 0 || len(m.Pix) != m.W*m.H*m.C {
		return fmt.Errorf("malformed image %dx%dx%d with %d bytes", m.W, m.H, m.C, len(m.Pix))
	}
	return nil
}

// SubImage returns a copy of the rectangle [x0, x0+w) x [y0, y0+h) of m.
func (m *Image) SubImage(x0, y0, w, h int) *Image {
	out := New(w, h, m.C)
	row := w * m.C
	for y := 0; y < h; y++ {
		src := ((y0+y)*m.W + x0) * m.C
		copy(out.Pix[y*row:(y+1)*row], m.Pix[src:src+row])
	}
	return out
}

// FromRGBA converts an *image.RGBA to a 3-channel Image (alpha dropped).
func FromRGBA(src *image.RGBA) *Image {
	b := src.Bounds()
	out := New(b.Dx(), b.Dy(), 3)
	for y := 0; y < out.H; y++ {
		s := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
		d := out.Pix[y*out.W*3:]
		for x := 0; x < out.W; x++ {
			d[3*x], d[3*x+1], d[3*x+2] = s[4*x], s[4*x+1], s[4*x+2]
		}
	}
	return out
}

// FromGray converts an *image.Gray to a 1-channel Image.
func FromGray(src *image.Gray) *Image {
	b := src.Bounds()
	out := New(b.Dx(), b.Dy(), 1)
	for y := 0; y < out.H; y++ {
		o := src.PixOffset(b.Min.X, b.Min.Y+y)
		copy(out.Pix[y*out.W:(y+1)*out.W], src.Pix[o:o+out.W])
	}
	return out
}

// RGBA converts a 1- or 3-channel image to an *image.RGBA (opaque).
func (m *Image) RGBA() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	n := m.W * m.H
	for i := 0; i < n; i++ {
		d := out.Pix[4*i : 4*i+4]
		if m.C >= 3 {
			d[0], d[1], d[2] = m.Pix[m.C*i], m.Pix[m.C*i+1], m.Pix[m.C*i+2]
		} else {
			v := m.Pix[m.C*i]
			d[0], d[1], d[2] = v, v, v
		}
		d[3] = 255
	}
	return out
}

// Gray returns the luma of a 3-channel image (OpenCV's RGB2GRAY weights
// 0.299, 0.587, 0.114 in 14-bit fixed point) as a 1-channel image; a
// 1-channel image is copied.
func (m *Image) Gray() *Image {
	if m.C == 1 {
		return m.Clone()
	}
	out := New(m.W, m.H, 1)
	for i := range out.Pix {
		p := m.Pix[m.C*i:]
		out.Pix[i] = luma(p[0], p[1], p[2])
	}
	return out
}

func luma(r, g, b uint8) uint8 {
	return uint8((int(r)*4899 + int(g)*9617 + int(b)*1868 + 8192) >> 14)
}
