package sbi

import (
	"image"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/face"
)

// synthFace returns a size x size test picture (smooth colour gradients
// plus a fine texture, so that any change of the source shows) and a
// plausible 68-point landmark layout of a face centred in it.
func synthFace(size int) (*image.RGBA, [face.NumLandmarks][2]float32) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			i := img.PixOffset(x, y)
			img.Pix[i+0] = uint8(40 + 150*x/size + (x*7+y*3)%11)
			img.Pix[i+1] = uint8(60 + 120*y/size + (x*5+y*11)%13)
			img.Pix[i+2] = uint8(90 + 60*(x+y)/(2*size) + (x*3+y*7)%9)
			img.Pix[i+3] = 255
		}
	}
	return img, synthLandmarks(float64(size)/2, float64(size)*0.45, float64(size)*0.3, float64(size)*0.38)
}

// synthLandmarks lays out the 68 iBUG points of a frontal face whose eyes
// are at height cy, half-width a and chin b below cy.
func synthLandmarks(cx, cy, a, b float64) [face.NumLandmarks][2]float32 {
	var lm [face.NumLandmarks][2]float32
	set := func(i int, x, y float64) { lm[i] = [2]float32{float32(x), float32(y)} }
	for i := 0; i < 17; i++ { // jaw: ear to ear through the chin
		t := math.Pi * float64(i) / 16
		set(i, cx-a*math.Cos(t), cy+b*math.Sin(t))
	}
	for i := 0; i < 5; i++ { // brows
		u := float64(i) / 4
		arch := 0.08 * b * math.Sin(math.Pi*u)
		set(17+i, cx-0.85*a+0.7*a*u, cy-0.32*b-arch)
		set(22+i, cx+0.15*a+0.7*a*u, cy-0.32*b-arch)
	}
	for i := 0; i < 4; i++ { // nose ridge
		set(27+i, cx, cy-0.2*b+0.15*b*float64(i))
	}
	for i := 0; i < 5; i++ { // nose base
		set(31+i, cx-0.2*a+0.1*a*float64(i), cy+0.38*b)
	}
	eye := func(start int, ex float64, outerFirst bool) {
		// corner, two top, corner, two bottom (clockwise on screen).
		ang := []float64{math.Pi, 2 * math.Pi / 3 * 2, math.Pi / 3 * 5, 0, math.Pi / 3, 2 * math.Pi / 3}
		if !outerFirst {
			ang = []float64{math.Pi, 4 * math.Pi / 3, 5 * math.Pi / 3, 0, math.Pi / 3, 2 * math.Pi / 3}
		}
		for k, t := range ang {
			set(start+k, ex+0.2*a*math.Cos(t), cy+0.07*b*math.Sin(t))
		}
	}
	eye(36, cx-0.45*a, true)
	eye(42, cx+0.45*a, false)
	my := cy + 0.62*b
	for k := 0; k < 12; k++ { // outer lip, from the left corner over the top
		t := math.Pi + 2*math.Pi*float64(k)/12
		set(48+k, cx+0.38*a*math.Cos(t), my+0.14*b*math.Sin(t))
	}
	for k := 0; k < 8; k++ { // inner lip
		t := math.Pi + 2*math.Pi*float64(k)/8
		set(60+k, cx+0.3*a*math.Cos(t), my+0.06*b*math.Sin(t))
	}
	return lm
}

func toPts(lm [face.NumLandmarks][2]float32) []pt {
	out := make([]pt, len(lm))
	for i, p := range lm {
		out[i] = pt{float64(p[0]), float64(p[1])}
	}
	return out
}

// outerHull is the convex hull of every mask shape can reach before the
// geometric steps: the landmarks and the raised brows of HullExtended
// (each brow point moved away from its eye point by half their distance).
func outerHull(lm [face.NumLandmarks][2]float32) []pt {
	p := toPts(lm)
	mid := func(a, b pt) pt { return pt{(a[0] + b[0]) / 2, (a[1] + b[1]) / 2} }
	eyes := []pt{mid(p[36], mid(p[36], p[0])), p[36], p[37], p[38], p[39], p[42], p[43], p[44], p[45], mid(p[45], mid(p[16], p[45]))}
	all := append([]pt(nil), p...)
	for i := 0; i < 10; i++ {
		b := p[17+i]
		all = append(all, pt{b[0] + (b[0]-eyes[i][0])/2, b[1] + (b[1]-eyes[i][1])/2})
	}
	return convexHull(all)
}

// distToPolygon returns 0 inside the convex polygon, else the distance to
// its boundary.
func distToPolygon(q pt, poly []pt) float64 {
	inside := true
	best := math.Inf(1)
	for i := range poly {
		a, b := poly[i], poly[(i+1)%len(poly)]
		cross := (b[0]-a[0])*(q[1]-a[1]) - (b[1]-a[1])*(q[0]-a[0])
		if cross < 0 {
			inside = false
		}
		dx, dy := b[0]-a[0], b[1]-a[1]
		t := ((q[0]-a[0])*dx + (q[1]-a[1])*dy) / (dx*dx + dy*dy)
		t = math.Max(0, math.Min(1, t))
		best = math.Min(best, math.Hypot(q[0]-a[0]-t*dx, q[1]-a[1]-t*dy))
	}
	if inside {
		return 0
	}
	return best
}

func TestConvexHullAndFill(t *testing.T) {
	h := convexHull([]pt{{1, 1}, {5, 1}, {3, 2}, {5, 5}, {1, 5}, {2, 3}, {5, 3}})
	if len(h) != 4 {
		t.Fatalf("hull of a square with inner and edge points: %v, want its 4 corners", h)
	}
	// A 4x4 square [1,5)x[1,5) covers exactly the 16 pixels whose centres
	// lie inside it.
	m := make([]uint8, 8*8)
	fillConvex(m, 8, 8, h)
	n := 0
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			in := x >= 1 && x < 5 && y >= 1 && y < 5
			if (m[y*8+x] == 255) != in {
				t.Errorf("pixel (%d,%d) filled %v, want %v", x, y, m[y*8+x] == 255, in)
			}
			if m[y*8+x] == 255 {
				n++
			}
		}
	}
	if n != 16 {
		t.Errorf("%d pixels filled, want 16", n)
	}
	// A triangle half out of the picture is clipped, not wrapped.
	m = make([]uint8, 8*8)
	fillConvex(m, 8, 8, convexHull([]pt{{-10, 0}, {4, 0}, {4, 20}}))
	for y := 0; y < 8; y++ {
		for x := 4; x < 8; x++ {
			if m[y*8+x] != 0 {
				t.Fatalf("pixel (%d,%d) right of the triangle is filled", x, y)
			}
		}
	}
}

func TestGaussianKernel(t *testing.T) {
	tests := []struct {
		k     int
		sigma float64
		want  []float32
	}{
		{5, 0, []float32{0.0625, 0.25, 0.375, 0.25, 0.0625}}, // OpenCV's fixed table
		// k = 9, sigma 0: sigma = 0.3*(4-1)+0.8 = 1.7; weights exp(-i²/5.78).
		{9, 0, norm([]float64{math.Exp(-16 / 5.78), math.Exp(-9 / 5.78), math.Exp(-4 / 5.78), math.Exp(-1 / 5.78), 1, math.Exp(-1 / 5.78), math.Exp(-4 / 5.78), math.Exp(-9 / 5.78), math.Exp(-16 / 5.78)})},
		{3, 100, []float32{1.0 / 3, 1.0 / 3, 1.0 / 3}}, // a wide sigma is nearly a box
	}
	for _, tc := range tests {
		got := gaussianKernel(tc.k, tc.sigma)
		for i := range got {
			if math.Abs(float64(got[i]-tc.want[i])) > 1e-4 {
				t.Errorf("k=%d sigma=%v: %v, want %v", tc.k, tc.sigma, got, tc.want)
				break
			}
		}
	}
	// Blurring a constant plane leaves it constant, borders included.
	p := newPlane(7, 5)
	for i := range p.p {
		p.p[i] = 0.5
	}
	for _, v := range p.blur(25, 9).p {
		if math.Abs(float64(v)-0.5) > 1e-6 {
			t.Fatalf("blurred constant plane has %v", v)
		}
	}
}

func norm(w []float64) []float32 {
	var s float64
	for _, v := range w {
		s += v
	}
	out := make([]float32, len(w))
	for i, v := range w {
		out[i] = float32(v / s)
	}
	return out
}

func TestResizePlane(t *testing.T) {
	// 2 -> 4 pixels, OpenCV INTER_LINEAR: [a, .75a+.25b, .25a+.75b, b].
	p := &plane{w: 2, h: 1, p: []float32{0, 1}}
	got := p.resize(4, 1).p
	want := []float32{0, 0.25, 0.75, 1}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("resize 2->4: %v, want %v", got, want)
		}
	}
}

func TestReflect101(t *testing.T) {
	n := 5 // abcde: index -2 -> c, -1 -> b, 5 -> d, 6 -> c
	for _, tc := range [][2]int{{-2, 2}, {-1, 1}, {0, 0}, {4, 4}, {5, 3}, {6, 2}, {-13, 3}} {
		if got := reflect101(tc[0], n); got != tc[1] {
			t.Errorf("reflect101(%d, 5) = %d, want %d", tc[0], got, tc[1])
		}
	}
}

// blendBound is the farthest, in pixels, that a mask pixel may lie outside
// the outer hull of the landmarks: the source shift and resize move the
// mask by at most |s-1|·r + |t| (r the distance from the image centre, plus
// a pixel of nearest-neighbour rounding), the deformation by Deform·extent
// per axis (plus rounding), and the blurs reach half the widest kernel (12
// pixels) plus a pixel for each of the two bilinear resizes, at the blend
// mask's resolution, which is at least 192/(2·width) and 192/(2.4·height)
// of the image's.
func blendBound(o Options, lm [face.NumLandmarks][2]float32, w, h int) float64 {
	p := toPts(lm)
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, q := range p {
		minX, maxX = math.Min(minX, q[0]), math.Max(maxX, q[0])
		minY, maxY = math.Min(minY, q[1]), math.Max(maxY, q[1])
	}
	lmW, lmH := maxX-minX, maxY-minY
	r := 0.0
	for _, q := range outerHull(lm) {
		r = math.Max(r, math.Hypot(q[0]-float64(w)/2, q[1]-float64(h)/2))
	}
	var geo float64
	if o.Shift[0] >= 0 || o.Scale != 1 {
		sx, sy, sc := 0.03, 0.015, 0.95
		if o.Shift[0] < 0 {
			sx, sy = 0, 0
		}
		if o.Scale != 0 {
			sc = o.Scale
		}
		geo = (1/sc-1)*r + math.Hypot(sx*float64(w), sy*float64(h)) + 1
	}
	if o.Deform >= 0 {
		d := 0.03
		if o.Deform > 0 {
			d = o.Deform
		}
		geo += math.Sqrt2*(d*math.Max(lmW, lmH)+0.5) + 1
	}
	f := math.Min(192/(2*lmW), 192/(2.4*lmH)) * 0.98
	return geo + (12+2)/f + 2
}

func TestBlendDiffersOnlyInsideMask(t *testing.T) {
	img, lm := synthFace(160)
	outer := outerHull(lm)
	tests := []struct {
		name string
		o    Options
	}{
		{"defaults", Options{}},
		{"no geometry", Options{Shift: [2]float64{-1, -1}, Scale: 1, Deform: -1}},
		{"face hull, full ratio", Options{Hulls: []Hull{HullFace}, BlendRatios: []float64{1}}},
		{"extended hull", Options{Hulls: []Hull{HullExtended}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bound := blendBound(tc.o, lm, 160, 160)
			var worst float64
			changed := 0
			for seed := uint64(0); seed < 24; seed++ {
				out, mask, err := Blend(img, lm, rand.New(rand.NewPCG(seed, 1)), tc.o)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if out.Rect != img.Rect || mask.Rect != img.Rect {
					t.Fatalf("seed %d: sizes %v, %v, want %v", seed, out.Rect, mask.Rect, img.Rect)
				}
				inMask, diff := 0, 0
				for y := 0; y < 160; y++ {
					for x := 0; x < 160; x++ {
						m := mask.Pix[y*mask.Stride+x]
						i := img.PixOffset(x, y)
						same := out.Pix[i] == img.Pix[i] && out.Pix[i+1] == img.Pix[i+1] && out.Pix[i+2] == img.Pix[i+2] && out.Pix[i+3] == 255
						if m == 0 && !same {
							t.Fatalf("seed %d: pixel (%d,%d) changed where the mask is 0", seed, x, y)
						}
						if m > 0 {
							inMask++
							if !same {
								diff++
							}
							worst = math.Max(worst, distToPolygon(pt{float64(x) + 0.5, float64(y) + 0.5}, outer))
						}
					}
				}
				if inMask < 160*160/20 {
					t.Errorf("seed %d: mask covers only %d pixels", seed, inMask)
				}
				if diff > 0 {
					changed++
				}
			}
			if tc.o.Shift[0] >= 0 && changed < 20 {
				t.Errorf("only %d of 24 blends changed any pixel", changed)
			}
			if worst > bound {
				t.Errorf("a mask pixel lies %.1f px outside the landmarks' hull; the bound is %.1f", worst, bound)
			}
			t.Logf("farthest mask pixel outside the hull: %.1f px (bound %.1f)", worst, bound)
		})
	}
}

func TestBlendDeterministic(t *testing.T) {
	img, lm := synthFace(128)
	a, am, err := Blend(img, lm, rand.New(rand.NewPCG(7, 7)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, bm, err := Blend(img, lm, rand.New(rand.NewPCG(7, 7)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Pix) != string(b.Pix) || string(am.Pix) != string(bm.Pix) {
		t.Fatal("same seed, different blends")
	}
	distinct := map[string]bool{}
	for seed := uint64(0); seed < 8; seed++ {
		_, m, err := Blend(img, lm, rand.New(rand.NewPCG(seed, 3)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		distinct[string(m.Pix)] = true
	}
	if len(distinct) < 8 {
		t.Errorf("8 seeds gave %d distinct masks", len(distinct))
	}
}

func TestBlendRatioScalesMask(t *testing.T) {
	img, lm := synthFace(128)
	for _, ratio := range []float64{0.25, 1} {
		_, m, err := Blend(img, lm, rand.New(rand.NewPCG(1, 2)), Options{BlendRatios: []float64{ratio}})
		if err != nil {
			t.Fatal(err)
		}
		var mx uint8
		for _, v := range m.Pix {
			mx = max(mx, v)
		}
		// The blurred mask is normalised to a maximum of 1 before the ratio.
		if want := uint8(math.Round(255 * ratio)); mx != want {
			t.Errorf("ratio %v: mask maximum %d, want %d", ratio, mx, want)
		}
	}
}

func TestBlendBadInput(t *testing.T) {
	img, lm := synthFace(96)
	rng := rand.New(rand.NewPCG(1, 1))
	nan := lm
	nan[30][0] = float32(math.NaN())
	var tiny [face.NumLandmarks][2]float32
	for i := range tiny {
		tiny[i] = [2]float32{40 + float32(i%3), 40 + float32(i%2)}
	}
	outside := lm
	for i := range outside {
		outside[i][0] += 150
	}
	farAway := lm
	farAway[8][1] = 1e5
	tests := []struct {
		name string
		img  *image.RGBA
		lm   [face.NumLandmarks][2]float32
		o    Options
		rng  *rand.Rand
		want string
	}{
		{"nil image", nil, lm, Options{}, rng, "empty face image"},
		{"empty image", image.NewRGBA(image.Rect(0, 0, 0, 0)), lm, Options{}, rng, "empty face image"},
		{"nil rng", img, lm, Options{}, nil, "nil random source"},
		{"NaN landmark", img, nan, Options{}, rng, "landmark 30 is not finite"},
		{"tiny face", img, tiny, Options{}, rng, "too small"},
		{"outside", img, outside, Options{}, rng, "outside"},
		{"one far away", img, farAway, Options{}, rng, "landmark 8 at (48, 100000) is far outside the 96x96 image"},
		{"bad ratio", img, lm, Options{BlendRatios: []float64{1.5}}, rng, "blend ratio 1.5"},
		{"empty ratios", img, lm, Options{BlendRatios: []float64{}}, rng, "empty blend ratio list"},
		{"bad hull", img, lm, Options{Hulls: []Hull{9}}, rng, "unknown hull"},
		{"bad scale", img, lm, Options{Scale: 2}, rng, "scale 2"},
		{"bad shift", img, lm, Options{Shift: [2]float64{0.9, 0}}, rng, "shift 0.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Blend(tc.img, tc.lm, tc.rng, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseHull(t *testing.T) {
	for _, h := range allHulls {
		got, err := ParseHull(strings.ToUpper(h.String()))
		if err != nil || got != h {
			t.Errorf("ParseHull(%q) = %v, %v", h.String(), got, err)
		}
	}
	if _, err := ParseHull("ellipse"); err == nil {
		t.Error("ParseHull accepted an unknown name")
	}
}

// BenchmarkBlend299 times one self-blend of a 299x299 face.
func BenchmarkBlend299(b *testing.B) {
	img, lm := synthFace(299)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < b.N; i++ {
		if _, _, err := Blend(img, lm, rng, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
