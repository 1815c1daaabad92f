package augment

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// ToGray replaces a 3-channel image's colours by their luma, in place
// (albumentations' ToGray).
func ToGray(m *Image) {
	if m.C < 3 {
		return
	}
	for i := 0; i+2 < len(m.Pix); i += m.C {
		v := luma(m.Pix[i], m.Pix[i+1], m.Pix[i+2])
		m.Pix[i], m.Pix[i+1], m.Pix[i+2] = v, v, v
	}
}

// JPEG returns m encoded as a JPEG of the given quality (1-100) and decoded
// again (albumentations' ImageCompression).
func JPEG(m *Image, quality int) (*Image, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("jpeg: %w", err)
	}
	var buf bytes.Buffer
	var src image.Image
	if m.C == 1 {
		src = &image.Gray{Pix: m.Pix, Stride: m.W, Rect: image.Rect(0, 0, m.W, m.H)}
	} else {
		src = m.RGBA()
	}
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("jpeg encode: %w", err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		return nil, fmt.Errorf("jpeg decode: %w", err)
	}
	out := New(m.W, m.H, m.C)
	switch d := dec.(type) {
	case *image.Gray:
		if m.C == 1 {
			return FromGray(d), nil
		}
		for i := 0; i < m.W*m.H; i++ {
			v := d.Pix[(i/m.W)*d.Stride+i%m.W]
			out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = v, v, v
		}
	case *image.YCbCr:
		for y := 0; y < m.H; y++ {
			for x := 0; x < m.W; x++ {
				yi := d.YOffset(x, y)
				ci := d.COffset(x, y)
				r, g, b := ycbcrToRGB(d.Y[yi], d.Cb[ci], d.Cr[ci])
				o := (y*m.W + x) * m.C
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = r, g, b
			}
		}
	default:
		return nil, fmt.Errorf("jpeg decode: unexpected image type %T", dec)
	}
	return out, nil
}

// ycbcrToRGB is image/color's YCbCrToRGB (JFIF full range).
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy + 91881*cr1
	g := yy - 22554*cb1 - 46802*cr1
	b := yy + 116130*cb1
	return clamp16(r), clamp16(g), clamp16(b)
}

func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// GaussianBlur3 blurs m with OpenCV's 3x3 Gaussian kernel for sigma 0
// ([1 2 1]/4 in each direction, reflect-101 border): albumentations'
// GaussianBlur(blur_limit=3, sigma_limit=0).
func GaussianBlur3(m *Image) {
	W, H, C := m.W, m.H, m.C
	if W < 2 || H < 2 {
		return
	}
	tmp := make([]uint16, len(m.Pix))
	refl := func(i, n int) int {
		if i < 0 {
			return -i
		}
		if i >= n {
			return 2*n - 2 - i
		}
		return i
	}
	for y := 0; y < H; y++ {
		r := m.Pix[y*W*C : (y+1)*W*C]
		t := tmp[y*W*C : (y+1)*W*C]
		for x := 0; x < W; x++ {
			xl, xr := refl(x-1, W), refl(x+1, W)
			for c := 0; c < C; c++ {
				t[x*C+c] = uint16(r[xl*C+c]) + 2*uint16(r[x*C+c]) + uint16(r[xr*C+c])
			}
		}
	}
	for y := 0; y < H; y++ {
		yu, yd := refl(y-1, H), refl(y+1, H)
		a := tmp[yu*W*C : (yu+1)*W*C]
		b := tmp[y*W*C : (y+1)*W*C]
		d := tmp[yd*W*C : (yd+1)*W*C]
		o := m.Pix[y*W*C : (y+1)*W*C]
		for i := range o {
			o[i] = uint8((uint32(a[i]) + 2*uint32(b[i]) + uint32(d[i]) + 8) >> 4)
		}
	}
}

// GaussianNoise adds independent N(0, sigma²) noise to every channel of
// every pixel, clipping to [0, 255] and truncating like albumentations'
// GaussNoise(per_channel=True).
func GaussianNoise(m *Image, rng *rand.Rand, sigma float64) {
	for i, v := range m.Pix {
		f := float64(v) + rng.NormFloat64()*sigma
		if f < 0 {
			f = 0
		} else if f > 255 {
			f = 255
		}
		m.Pix[i] = uint8(f)
	}
}

// BrightnessContrast maps every value v to clip(v*alpha + beta*255)
// (albumentations' RandomBrightnessContrast with brightness_by_max).
func BrightnessContrast(m *Image, alpha, beta float64) {
	var lut [256]uint8
	for v := range lut {
		f := float32(v)*float32(alpha) + float32(beta*255)
		if f < 0 {
			f = 0
		} else if f > 255 {
			f = 255
		}
		lut[v] = uint8(f)
	}
	for i, v := range m.Pix {
		m.Pix[i] = lut[v]
	}
}

// FancyPCA shifts a 3-channel image's colours along the principal
// components of its own pixel colours: every pixel gets
// 255·Σ_k alpha·λ_k·v_k added, where (λ_k, v_k) are the eigenpairs of the
// colour covariance of the image scaled to [0,1] (AlexNet's PCA lighting
// with albumentations' single alpha ~ N(0, 0.1)).
func FancyPCA(m *Image, alpha float64) {
	if m.C < 3 {
		return
	}
	n := float64(m.W * m.H)
	var sum [3]float64
	var sq [3][3]float64
	for i := 0; i+2 < len(m.Pix); i += m.C {
		p := [3]float64{float64(m.Pix[i]) / 255, float64(m.Pix[i+1]) / 255, float64(m.Pix[i+2]) / 255}
		for a := 0; a < 3; a++ {
			sum[a] += p[a]
			for b := a; b < 3; b++ {
				sq[a][b] += p[a] * p[b]
			}
		}
	}
	if n < 2 {
		return
	}
	var cov [3][3]float64
	for a := 0; a < 3; a++ {
		for b := a; b < 3; b++ {
			c := (sq[a][b] - sum[a]*sum[b]/n) / (n - 1)
			cov[a][b], cov[b][a] = c, c
		}
	}
	vals, vecs := eigSym3(cov)
	var add [3]float64
	for k := 0; k < 3; k++ {
		for c := 0; c < 3; c++ {
			add[c] += alpha * vals[k] * vecs[c][k] * 255
		}
	}
	var luts [3][256]uint8
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			f := float64(v) + add[c]
			if f < 0 {
				f = 0
			} else if f > 255 {
				f = 255
			}
			luts[c][v] = uint8(f)
		}
	}
	for i := 0; i+2 < len(m.Pix); i += m.C {
		m.Pix[i] = luts[0][m.Pix[i]]
		m.Pix[i+1] = luts[1][m.Pix[i+1]]
		m.Pix[i+2] = luts[2][m.Pix[i+2]]
	}
}

// eigSym3 returns the eigenvalues and eigenvectors (columns of vecs) of a
// symmetric 3x3 matrix by cyclic Jacobi rotations.
func eigSym3(a [3][3]float64) (vals [3]float64, vecs [3][3]float64) {
	v := [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	for sweep := 0; sweep < 50; sweep++ {
		off := a[0][1]*a[0][1] + a[0][2]*a[0][2] + a[1][2]*a[1][2]
		if off < 1e-30 {
			break
		}
		for p := 0; p < 2; p++ {
			for q := p + 1; q < 3; q++ {
				if a[p][q] == 0 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < 3; k++ { // A = A·J
					akp, akq := a[k][p], a[k][q]
					a[k][p], a[k][q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := 0; k < 3; k++ { // A = Jᵀ·A
					apk, aqk := a[p][k], a[q][k]
					a[p][k], a[q][k] = c*apk-s*aqk, s*apk+c*aqk
				}
				for k := 0; k < 3; k++ {
					vkp, vkq := v[k][p], v[k][q]
					v[k][p], v[k][q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	return [3]float64{a[0][0], a[1][1], a[2][2]}, v
}

// ShiftHSV shifts hue (OpenCV 8-bit units, 0-179, wrapping), saturation and
// value (0-255, clipped) of a 3-channel image in place (albumentations'
// HueSaturationValue on uint8 images).
func ShiftHSV(m *Image, hue, sat, val float64) {
	if m.C < 3 {
		return
	}
	var lh, ls, lv [256]uint8
	for v := 0; v < 256; v++ {
		h := math.Mod(float64(v)+hue, 180)
		if h < 0 {
			h += 180
		}
		lh[v] = uint8(h)
		ls[v] = clip255(float64(v) + sat)
		lv[v] = clip255(float64(v) + val)
	}
	for i := 0; i+2 < len(m.Pix); i += m.C {
		h, s, v := rgbToHSV(m.Pix[i], m.Pix[i+1], m.Pix[i+2])
		m.Pix[i], m.Pix[i+1], m.Pix[i+2] = hsvToRGB(lh[h], ls[s], lv[v])
	}
}

func clip255(f float64) uint8 {
	if f < 0 {
		return 0
	}
	if f > 255 {
		return 255
	}
	return uint8(f)
}

// rgbToHSV is OpenCV's 8-bit RGB2HSV: H in [0,180), S and V in [0,255].
func rgbToHSV(r, g, b uint8) (h, s, v uint8) {
	ri, gi, bi := int(r), int(g), int(b)
	mx, mn := max(ri, gi, bi), min(ri, gi, bi)
	diff := mx - mn
	if mx == 0 {
		return 0, 0, 0
	}
	s = uint8((diff*255 + mx/2) / mx)
	if diff == 0 {
		return 0, s, uint8(mx)
	}
	var num int
	switch mx {
	case ri:
		num = gi - bi
	case gi:
		num = bi - ri + 2*diff
	default:
		num = ri - gi + 4*diff
	}
	hh := floorInt(float64(num)*30/float64(diff) + 0.5)
	if hh < 0 {
		hh += 180
	}
	if hh >= 180 {
		hh -= 180
	}
	return uint8(hh), s, uint8(mx)
}

// hsvToRGB is OpenCV's 8-bit HSV2RGB.
func hsvToRGB(h, s, v uint8) (r, g, b uint8) {
	vf := float64(v) / 255
	if s == 0 {
		return v, v, v
	}
	sf := float64(s) / 255
	hf := float64(h) * 6 / 180
	sector := floorInt(hf)
	f := hf - float64(sector)
	sector %= 6
	p := vf * (1 - sf)
	q := vf * (1 - sf*f)
	t := vf * (1 - sf*(1-f))
	var rf, gf, bf float64
	switch sector {
	case 0:
		rf, gf, bf = vf, t, p
	case 1:
		rf, gf, bf = q, vf, p
	case 2:
		rf, gf, bf = p, vf, t
	case 3:
		rf, gf, bf = p, q, vf
	case 4:
		rf, gf, bf = t, p, vf
	default:
		rf, gf, bf = vf, p, q
	}
	return uint8(rf*255 + 0.5), uint8(gf*255 + 0.5), uint8(bf*255 + 0.5)
}
