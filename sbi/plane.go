package sbi

import "math"

// plane is a single-channel float32 image.
type plane struct {
	w, h int
	p    []float32
}

func newPlane(w, h int) *plane { return &plane{w: w, h: h, p: make([]float32, w*h)} }

// reflect101 maps an index outside [0, n) back inside as OpenCV's
// BORDER_REFLECT_101 does (gfedcb|abcdefgh|gfedcba).
func reflect101(i, n int) int {
	if n == 1 {
		return 0
	}
	for i < 0 || i >= n {
		if i < 0 {
			i = -i
		}
		if i >= n {
			i = 2*n - 2 - i
		}
	}
	return i
}

// smallGaussian are the fixed kernels OpenCV's getGaussianKernel uses for
// sizes up to 7 when sigma <= 0.
var smallGaussian = map[int][]float32{
	1: {1},
	3: {0.25, 0.5, 0.25},
	5: {0.0625, 0.25, 0.375, 0.25, 0.0625},
	7: {0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125},
}

// gaussianKernel returns OpenCV's getGaussianKernel(k, sigma) weights (for
// sigma <= 0, the fixed small kernels or sigma = 0.3*((k-1)*0.5-1)+0.8).
func gaussianKernel(k int, sigma float64) []float32 {
	if t, ok := smallGaussian[k]; ok && sigma <= 0 {
		return append([]float32(nil), t...)
	}
	if sigma <= 0 {
		sigma = 0.3*((float64(k)-1)*0.5-1) + 0.8
	}
	w := make([]float64, k)
	var sum float64
	for i := range w {
		x := float64(i) - float64(k-1)/2
		w[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += w[i]
	}
	out := make([]float32, k)
	for i := range w {
		out[i] = float32(w[i] / sum)
	}
	return out
}

// blur returns the plane convolved with a k x k Gaussian (separable,
// reflect-101 border), as cv2.GaussianBlur.
func (m *plane) blur(k int, sigma float64) *plane {
	kern := gaussianKernel(k, sigma)
	r := k / 2
	tmp := newPlane(m.w, m.h)
	xs := make([]int, m.w+2*r)
	for i := range xs {
		xs[i] = reflect101(i-r, m.w)
	}
	for y := 0; y < m.h; y++ {
		src := m.p[y*m.w : (y+1)*m.w]
		dst := tmp.p[y*m.w : (y+1)*m.w]
		for x := range dst {
			var s float32
			for j, kv := range kern {
				s += kv * src[xs[x+j]]
			}
			dst[x] = s
		}
	}
	out := newPlane(m.w, m.h)
	ys := make([]int, m.h+2*r)
	for i := range ys {
		ys[i] = reflect101(i-r, m.h)
	}
	for y := 0; y < m.h; y++ {
		dst := out.p[y*m.w : (y+1)*m.w]
		for j, kv := range kern {
			src := tmp.p[ys[y+j]*m.w : (ys[y+j]+1)*m.w]
			for x := range dst {
				dst[x] += kv * src[x]
			}
		}
	}
	return out
}

// max returns the largest value (0 for an all-zero or empty plane).
func (m *plane) max() float32 {
	var mx float32
	for _, v := range m.p {
		mx = max(mx, v)
	}
	return mx
}

// scale multiplies every value by f.
func (m *plane) scale(f float32) {
	for i := range m.p {
		m.p[i] *= f
	}
}

// resize returns the plane scaled to w x h with OpenCV's INTER_LINEAR
// geometry (pixel centres aligned, edges replicated).
func (m *plane) resize(w, h int) *plane {
	out := newPlane(w, h)
	taps := func(n, srcN int) (i0, i1 []int, f []float32) {
		i0, i1, f = make([]int, n), make([]int, n), make([]float32, n)
		k := float64(srcN) / float64(n)
		for u := 0; u < n; u++ {
			s := (float64(u)+0.5)*k - 0.5
			if s < 0 {
				s = 0
			}
			a := int(math.Floor(s))
			if a >= srcN-1 {
				i0[u], i1[u], f[u] = srcN-1, srcN-1, 0
				continue
			}
			i0[u], i1[u], f[u] = a, a+1, float32(s-float64(a))
		}
		return i0, i1, f
	}
	xi0, xi1, xf := taps(w, m.w)
	yi0, yi1, yf := taps(h, m.h)
	for v := 0; v < h; v++ {
		r0 := m.p[yi0[v]*m.w:]
		r1 := m.p[yi1[v]*m.w:]
		fy := yf[v]
		row := out.p[v*w : (v+1)*w]
		for u := range row {
			a, b, fx := xi0[u], xi1[u], xf[u]
			top := r0[a] + (r0[b]-r0[a])*fx
			bot := r1[a] + (r1[b]-r1[a])*fx
			row[u] = top + (bot-top)*fy
		}
	}
	return out
}
