package face

import (
	"image"
	"math"
)

// CropOptions set the geometry of face crops. Zero values select the
// defaults.
type CropOptions struct {
	// Scale enlarges the square around the face box: its side is
	// Scale*max(box width, box height) (default 1.3).
	Scale float32
	// Size is the side of the output crop in pixels (default 299, LVNet's
	// input).
	Size int
	// Clamp moves the square inside the image where it fits, instead of
	// keeping the face centred and filling the part outside the image
	// with black (the default).
	Clamp bool
}

func (o CropOptions) withDefaults() CropOptions {
	if o.Scale <= 0 {
		o.Scale = 1.3
	}
	if o.Size <= 0 {
		o.Size = 299
	}
	return o
}

// CropBox returns the square, in image coordinates, that Crop cuts for face
// box b in an image of the given bounds.
func CropBox(b Box, bounds image.Rectangle, o CropOptions) Box {
	o = o.withDefaults()
	cx, cy := b.Center()
	side := max(b.W(), b.H()) * o.Scale
	sq := Box{cx - side/2, cy - side/2, cx + side/2, cy + side/2}
	if o.Clamp {
		shift := func(lo, hi, min, max float32) float32 {
			switch {
			case hi-lo > max-min:
				return 0 // does not fit: stay centred
			case lo < min:
				return min - lo
			case hi > max:
				return max - hi
			}
			return 0
		}
		dx := shift(sq.X0, sq.X1, float32(bounds.Min.X), float32(bounds.Max.X))
		dy := shift(sq.Y0, sq.Y1, float32(bounds.Min.Y), float32(bounds.Max.Y))
		sq = Box{sq.X0 + dx, sq.Y0 + dy, sq.X1 + dx, sq.Y1 + dy}
	}
	return sq
}

// ToCrop maps a point in image coordinates into the coordinates of a crop of
// side size cut at box (pixel i of either covers [i, i+1)).
func ToCrop(p [2]float32, box Box, size int) [2]float32 {
	k := float32(size) / box.W()
	return [2]float32{(p[0] - box.X0) * k, (p[1] - box.Y0) * k}
}

// FromCrop maps a point in crop coordinates back to the image.
func FromCrop(p [2]float32, box Box, size int) [2]float32 {
	k := box.W() / float32(size)
	return [2]float32{p[0]*k + box.X0, p[1]*k + box.Y0}
}

// Crop cuts the square around face f (CropBox) out of img, resized
// bilinearly to Size x Size (as OpenCV's INTER_LINEAR; parts outside the
// image are black), and returns it with the landmarks in crop coordinates
// and the square in image coordinates (for CropMask).
func Crop(img *image.RGBA, f Face, o CropOptions) (crop *image.RGBA, landmarks [NumLandmarks][2]float32, box Box) {
	o = o.withDefaults()
	box = CropBox(f.Box, img.Rect, o)
	crop = image.NewRGBA(image.Rect(0, 0, o.Size, o.Size))
	cropInto(img.Pix, img.Stride, 4, img.Rect, box, crop.Pix, crop.Stride, o.Size)
	for y := 0; y < o.Size; y++ { // opaque
		row := crop.Pix[y*crop.Stride:]
		for x := 0; x < o.Size; x++ {
			row[4*x+3] = 255
		}
	}
	for i, p := range f.Landmarks {
		landmarks[i] = ToCrop(p, box, o.Size)
	}
	return crop, landmarks, box
}

// CropMask applies the geometry of a crop (box from Crop or CropBox, side
// size) to a mask of the same frame, with the same bilinear resampling.
func CropMask(mask *image.Gray, box Box, size int) *image.Gray {
	if size <= 0 {
		size = 299
	}
	out := image.NewGray(image.Rect(0, 0, size, size))
	cropInto(mask.Pix, mask.Stride, 1, mask.Rect, box, out.Pix, out.Stride, size)
	return out
}

// axisTaps returns, for each output pixel along one axis, the two source
// indices (relative to lo; -1 when outside the source) and the weight of the
// second, for a half-pixel-centred bilinear resize of [b0, b1) to n pixels.
func axisTaps(b0, b1 float32, lo, hi, n int) (i0, i1 []int, f []float32) {
	i0, i1, f = make([]int, n), make([]int, n), make([]float32, n)
	k := float64(b1-b0) / float64(n)
	for u := 0; u < n; u++ {
		src := float64(b0) + (float64(u)+0.5)*k - 0.5 // in pixel-centre coordinates
		if src < float64(lo)-0.5 || src > float64(hi)-0.5 {
			i0[u], i1[u] = -1, -1
			continue
		}
		a := math.Floor(src)
		w := src - a
		c0, c1 := int(a), int(a)+1
		c0 = min(max(c0, lo), hi-1)
		c1 = min(max(c1, lo), hi-1)
		i0[u], i1[u], f[u] = c0-lo, c1-lo, float32(w)
	}
	return i0, i1, f
}

// cropInto resamples the box of a source image (pix, stride, ch channels,
// bounds r) into an n x n destination with ch channels (the alpha channel of
// 4-channel images is written as is and overwritten by the caller).
func cropInto(pix []uint8, stride, ch int, r image.Rectangle, box Box, dst []uint8, dstStride, n int) {
	xi0, xi1, xf := axisTaps(box.X0, box.X1, r.Min.X, r.Max.X, n)
	yi0, yi1, yf := axisTaps(box.Y0, box.Y1, r.Min.Y, r.Max.Y, n)
	for v := 0; v < n; v++ {
		drow := dst[v*dstStride : v*dstStride+n*ch]
		if yi0[v] < 0 {
			clear(drow)
			continue
		}
		r0 := pix[yi0[v]*stride:]
		r1 := pix[yi1[v]*stride:]
		fy := yf[v]
		for u := 0; u < n; u++ {
			d := drow[u*ch : u*ch+ch]
			if xi0[u] < 0 {
				clear(d)
				continue
			}
			a, b := xi0[u]*ch, xi1[u]*ch
			fx := xf[u]
			for c := 0; c < ch; c++ {
				top := float32(r0[a+c]) + (float32(r0[b+c])-float32(r0[a+c]))*fx
				bot := float32(r1[a+c]) + (float32(r1[b+c])-float32(r1[a+c]))*fx
				d[c] = uint8(top + (bot-top)*fy + 0.5)
			}
		}
	}
}
