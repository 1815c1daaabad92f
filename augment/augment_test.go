package augment

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// grid returns the 3x2 one-channel image
//
//	1 2 3
//	4 5 6
func grid() *Image { return &Image{W: 3, H: 2, C: 1, Pix: []uint8{1, 2, 3, 4, 5, 6}} }

func TestWarpPermutations(t *testing.T) {
	tests := []struct {
		name  string
		build func(g *Warp)
		w, h  int
		want  []uint8
	}{
		{"identity", func(g *Warp) {}, 3, 2, []uint8{1, 2, 3, 4, 5, 6}},
		{"flipH", func(g *Warp) { g.FlipH() }, 3, 2, []uint8{3, 2, 1, 6, 5, 4}},
		{"flipV", func(g *Warp) { g.FlipV() }, 3, 2, []uint8{4, 5, 6, 1, 2, 3}},
		{"rot90 k=1", func(g *Warp) { g.Rot90(1) }, 2, 3, []uint8{3, 6, 2, 5, 1, 4}},
		{"rot90 k=2", func(g *Warp) { g.Rot90(2) }, 3, 2, []uint8{6, 5, 4, 3, 2, 1}},
		{"rot90 k=3", func(g *Warp) { g.Rot90(3) }, 2, 3, []uint8{4, 1, 5, 2, 6, 3}},
		{"rot90 k=-1", func(g *Warp) { g.Rot90(-1) }, 2, 3, []uint8{4, 1, 5, 2, 6, 3}},
		{"rot90 k=4", func(g *Warp) { g.Rot90(4) }, 3, 2, []uint8{1, 2, 3, 4, 5, 6}},
		{"crop", func(g *Warp) { g.Crop(1, 0, 2, 2) }, 2, 2, []uint8{2, 3, 5, 6}},
		{"crop outside pads 0", func(g *Warp) { g.Crop(2, 1, 2, 2) }, 2, 2, []uint8{6, 0, 0, 0}},
		{"center crop", func(g *Warp) { g.CenterCrop(1, 2) }, 1, 2, []uint8{2, 5}},
		{"rot then flip", func(g *Warp) { g.Rot90(1); g.FlipH() }, 2, 3, []uint8{6, 3, 5, 2, 4, 1}},
		{"flip both = rot180", func(g *Warp) { g.FlipH(); g.FlipV() }, 3, 2, []uint8{6, 5, 4, 3, 2, 1}},
		{"resize same size", func(g *Warp) { g.Resize(3, 2) }, 3, 2, []uint8{1, 2, 3, 4, 5, 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, nearest := range []bool{false, true} {
				g := NewWarp(3, 2)
				tc.build(g)
				if w, h := g.Size(); w != tc.w || h != tc.h {
					t.Fatalf("Size = %dx%d, want %dx%d", w, h, tc.w, tc.h)
				}
				var out *Image
				var err error
				if nearest {
					out, err = g.ApplyNearest(grid())
				} else {
					out, err = g.Apply(grid())
				}
				if err != nil {
					t.Fatal(err)
				}
				if out.W != tc.w || out.H != tc.h || !reflect.DeepEqual(out.Pix, tc.want) {
					t.Errorf("nearest=%v: got %dx%d %v, want %dx%d %v", nearest, out.W, out.H, out.Pix, tc.w, tc.h, tc.want)
				}
			}
		})
	}
}

func TestResizeBilinear(t *testing.T) {
	// OpenCV INTER_LINEAR: x_src = (x+0.5)*w/W - 0.5, edges replicated.
	src := &Image{W: 2, H: 1, C: 1, Pix: []uint8{0, 100}}
	out, err := Resize(src, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{0, 25, 75, 100}; !reflect.DeepEqual(out.Pix, want) {
		t.Errorf("Resize 2->4 = %v, want %v", out.Pix, want)
	}
	out, err = ResizeNearest(src, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{0, 0, 100, 100}; !reflect.DeepEqual(out.Pix, want) {
		t.Errorf("ResizeNearest 2->4 = %v, want %v", out.Pix, want)
	}
	// Downscale by 2: each output pixel is the mean of a 2x2 block.
	src = &Image{W: 4, H: 2, C: 1, Pix: []uint8{0, 20, 100, 200, 40, 60, 100, 100}}
	out, err = Resize(src, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{30, 125}; !reflect.DeepEqual(out.Pix, want) {
		t.Errorf("Resize 4x2->2x1 = %v, want %v", out.Pix, want)
	}
}

func TestAffineRotation(t *testing.T) {
	// A 90-degree turn about the centre of a square equals Rot90(1).
	src := New(5, 5, 3)
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	g := NewWarp(5, 5)
	g.Affine(RotationMatrix(2, 2, 90, 1))
	got, err := g.Apply(src)
	if err != nil {
		t.Fatal(err)
	}
	r := NewWarp(5, 5)
	r.Rot90(1)
	want, _ := r.Apply(src)
	if !reflect.DeepEqual(got.Pix, want.Pix) {
		t.Errorf("Affine(rotate 90) != Rot90(1)")
	}
	// Scaling by 0.5 about the centre leaves a zero border.
	g = NewWarp(8, 8)
	g.Affine(RotationMatrix(4, 4, 0, 0.5))
	full := New(8, 8, 1)
	for i := range full.Pix {
		full.Pix[i] = 200
	}
	got, err = g.ApplyNearest(full)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pix[0] != 0 || got.Pix[7] != 0 || got.Pix[63] != 0 || got.Pix[4*8+4] != 200 {
		t.Errorf("scaled image: corners %d %d %d (want 0), centre %d (want 200)", got.Pix[0], got.Pix[7], got.Pix[63], got.Pix[36])
	}
	g = NewWarp(4, 4)
	g.Affine([6]float64{1, 2, 0, 2, 4, 0})
	if _, err := g.Apply(New(4, 4, 1)); err == nil {
		t.Error("singular affine map accepted")
	}
}

func TestWarpBadInput(t *testing.T) {
	g := NewWarp(3, 2)
	if _, err := g.Apply(New(2, 3, 1)); err == nil {
		t.Error("size mismatch accepted")
	}
	if _, err := g.Apply(&Image{W: 3, H: 2, C: 1, Pix: []uint8{1}}); err == nil {
		t.Error("short pixel buffer accepted")
	}
	if _, err := NewWarp(0, 2).Apply(New(1, 1, 1)); err == nil {
		t.Error("zero-size warp accepted")
	}
	g = NewWarp(3, 2)
	g.Crop(0, 0, 0, 1)
	if g.Err() == nil {
		t.Error("empty crop accepted")
	}
	c := Paper(16)
	c.JPEGQuality = [2]int{90, 10}
	if _, _, err := c.Apply(rand.New(rand.NewPCG(1, 2)), New(8, 8, 3)); err == nil {
		t.Error("bad JPEG range accepted")
	}
	c = Paper(16)
	if _, _, err := c.Apply(rand.New(rand.NewPCG(1, 2)), New(8, 8, 3), New(7, 8, 1)); err == nil {
		t.Error("mask of another size accepted")
	}
}

// squareScene is a mid-grey image with a pure red square, and the mask of
// that square.
func squareScene(w, h, x0, y0, side int) (*Image, *Image) {
	img := New(w, h, 3)
	mask := New(w, h, 1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := img.Pix[(y*w+x)*3:]
			if x >= x0 && x < x0+side && y >= y0 && y < y0+side {
				p[0], p[1], p[2] = 255, 0, 0
				mask.Pix[y*w+x] = 255
			} else {
				p[0], p[1], p[2] = 0, 160, 255
			}
		}
	}
	return img, mask
}

// geometricOnly is the paper's geometric pipeline with every photometric
// transform off.
func geometricOnly(size int) Config {
	c := Paper(size)
	c.GrayP, c.JPEGP, c.BlurP, c.NoiseP, c.ColorP = 0, 0, 0, 0, 0
	return c
}

func TestApplyKeepsMaskAligned(t *testing.T) {
	img, mask := squareScene(120, 100, 30, 25, 40)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"paper geometry", geometricOnly(64)},
		{"everything on", func() Config {
			c := geometricOnly(64)
			c.FlipP, c.Rotate90P, c.ResizedCropP, c.ShiftScaleRotateP = 1, 1, 1, 1
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(0); seed < 40; seed++ {
				out, ms, err := tc.cfg.Apply(rand.New(rand.NewPCG(seed, 7)), img, mask, nil)
				if err != nil {
					t.Fatal(err)
				}
				if out.W != 64 || out.H != 64 || ms[0].W != 64 || ms[1] != nil {
					t.Fatalf("seed %d: output sizes %dx%d, mask %v", seed, out.W, out.H, ms[0])
				}
				m := ms[0]
				for y := 1; y < 63; y++ {
					for x := 1; x < 63; x++ {
						// Interior pixels of the mask (all 8 neighbours set) are red;
						// interior pixels of the background region are not red.
						allOn, allOff := true, true
						for dy := -1; dy <= 1; dy++ {
							for dx := -1; dx <= 1; dx++ {
								v := m.Pix[(y+dy)*64+x+dx]
								allOn = allOn && v == 255
								allOff = allOff && v == 0
							}
						}
						p := out.Pix[(y*64+x)*3:]
						red := p[0] > 200 && p[1] < 50 && p[2] < 50
						if allOn && !red {
							t.Fatalf("seed %d: (%d,%d) inside the mask has colour %v", seed, x, y, p[:3])
						}
						if allOff && red {
							t.Fatalf("seed %d: (%d,%d) outside the mask is red", seed, x, y)
						}
					}
				}
			}
		})
	}
}

func TestApplyDeterministic(t *testing.T) {
	img, mask := squareScene(80, 80, 10, 10, 30)
	for i := range img.Pix { // texture, so that every transform changes something
		img.Pix[i] ^= uint8(i * 31)
	}
	c := Paper(48)
	run := func(seed uint64) (*Image, *Image) {
		out, ms, err := c.Apply(rand.New(rand.NewPCG(seed, 1)), img.Clone(), mask.Clone())
		if err != nil {
			t.Fatal(err)
		}
		return out, ms[0]
	}
	distinct := 0
	for seed := uint64(0); seed < 20; seed++ {
		a, am := run(seed)
		b, bm := run(seed)
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(am, bm) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		c2, _ := run(seed + 100)
		if !reflect.DeepEqual(a.Pix, c2.Pix) {
			distinct++
		}
	}
	if distinct < 15 {
		t.Errorf("only %d of 20 seed pairs gave different images", distinct)
	}
}

func TestFitCropsOrResizes(t *testing.T) {
	c := Config{Size: 4}
	// Larger image: centre crop, no resampling.
	big := New(6, 6, 1)
	for i := range big.Pix {
		big.Pix[i] = uint8(i)
	}
	out, _, err := c.Apply(rand.New(rand.NewPCG(1, 1)), big)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{7, 8, 9, 10, 13, 14, 15, 16, 19, 20, 21, 22, 25, 26, 27, 28}
	if !reflect.DeepEqual(out.Pix, want) {
		t.Errorf("centre crop = %v, want %v", out.Pix, want)
	}
	// Smaller image: resized up.
	small := &Image{W: 2, H: 2, C: 1, Pix: []uint8{0, 100, 100, 200}}
	out, _, err = c.Apply(rand.New(rand.NewPCG(1, 1)), small)
	if err != nil {
		t.Fatal(err)
	}
	if out.W != 4 || out.H != 4 || out.Pix[0] != 0 || out.Pix[15] != 200 || out.Pix[5] != 50 {
		t.Errorf("resize 2->4 = %v", out.Pix)
	}
}

func TestToGray(t *testing.T) {
	m := &Image{W: 3, H: 1, C: 3, Pix: []uint8{255, 0, 0, 0, 255, 0, 10, 20, 30}}
	ToGray(m)
	// OpenCV: 0.299 R + 0.587 G + 0.114 B, rounded in 14-bit fixed point.
	want := []uint8{76, 76, 76, 150, 150, 150, 18, 18, 18}
	if !reflect.DeepEqual(m.Pix, want) {
		t.Errorf("ToGray = %v, want %v", m.Pix, want)
	}
}

func TestBrightnessContrast(t *testing.T) {
	m := &Image{W: 4, H: 1, C: 1, Pix: []uint8{0, 100, 200, 255}}
	BrightnessContrast(m, 1.1, 0.1)
	// v*1.1 + 25.5, clipped and truncated.
	want := []uint8{25, 135, 245, 255}
	if !reflect.DeepEqual(m.Pix, want) {
		t.Errorf("BrightnessContrast = %v, want %v", m.Pix, want)
	}
	m = &Image{W: 2, H: 1, C: 1, Pix: []uint8{10, 200}}
	BrightnessContrast(m, 0.8, -0.1)
	if want := []uint8{0, 134}; !reflect.DeepEqual(m.Pix, want) {
		t.Errorf("BrightnessContrast darker = %v, want %v", m.Pix, want)
	}
}

func TestGaussianBlur3(t *testing.T) {
	m := New(5, 5, 1)
	m.Pix[12] = 160
	GaussianBlur3(m)
	want := []uint8{
		0, 0, 0, 0, 0,
		0, 10, 20, 10, 0,
		0, 20, 40, 20, 0,
		0, 10, 20, 10, 0,
		0, 0, 0, 0, 0,
	}
	if !reflect.DeepEqual(m.Pix, want) {
		t.Errorf("blurred impulse = %v, want %v", m.Pix, want)
	}
	// Reflect-101 border: the mirrored copies of a corner impulse add to
	// it, giving 40 at the corner, 20 beside it and 10 diagonally.
	m = New(3, 3, 1)
	m.Pix[0] = 160
	GaussianBlur3(m)
	if want := []uint8{40, 20, 0, 20, 10, 0, 0, 0, 0}; !reflect.DeepEqual(m.Pix, want) {
		t.Errorf("corner impulse = %v, want %v", m.Pix, want)
	}
}

func TestHSV(t *testing.T) {
	tests := []struct {
		r, g, b uint8
		h, s, v uint8
	}{
		{255, 0, 0, 0, 255, 255},
		{0, 255, 0, 60, 255, 255},
		{0, 0, 255, 120, 255, 255},
		{255, 255, 0, 30, 255, 255},
		{128, 128, 128, 0, 0, 128},
		{0, 0, 0, 0, 0, 0},
		{255, 0, 1, 180 - 0, 255, 255}, // just below 360 degrees rounds to 180 -> wraps to 0
	}
	for _, tc := range tests {
		h, s, v := rgbToHSV(tc.r, tc.g, tc.b)
		wantH := tc.h % 180
		if h != wantH || s != tc.s || v != tc.v {
			t.Errorf("rgbToHSV(%d,%d,%d) = %d,%d,%d want %d,%d,%d", tc.r, tc.g, tc.b, h, s, v, wantH, tc.s, tc.v)
		}
	}
	// Round trip over many colours: 8-bit hue has 2-degree steps, worth up
	// to (max-min)/60 levels of error.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		r, g, b := uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256))
		r2, g2, b2 := hsvToRGB(rgbToHSV(r, g, b))
		if absDiff(r, r2) > 5 || absDiff(g, g2) > 5 || absDiff(b, b2) > 5 {
			t.Fatalf("HSV round trip (%d,%d,%d) -> (%d,%d,%d)", r, g, b, r2, g2, b2)
		}
	}
	// Hue +60 (120 degrees) turns red into green; saturation -255 gives grey.
	m := &Image{W: 1, H: 1, C: 3, Pix: []uint8{255, 0, 0}}
	ShiftHSV(m, 60, 0, 0)
	if want := []uint8{0, 255, 0}; !reflect.DeepEqual(m.Pix, want) {
		t.Errorf("red hue+60 = %v, want %v", m.Pix, want)
	}
	m = &Image{W: 1, H: 1, C: 3, Pix: []uint8{200, 50, 50}}
	ShiftHSV(m, 0, -255, 0)
	if want := []uint8{200, 200, 200}; !reflect.DeepEqual(m.Pix, want) {
		t.Errorf("desaturated = %v, want %v", m.Pix, want)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestFancyPCA(t *testing.T) {
	// Grey pixels 50,50,150,150: the colour covariance (of values/255) has
	// one eigenvalue d² (d = 100/255) along (1,1,1)/√3, others 0. alpha = 1
	// shifts every channel by ±d²·255/√3 ≈ 22.64 (sign of the eigenvector is
	// arbitrary).
	m := &Image{W: 2, H: 2, C: 3, Pix: []uint8{50, 50, 50, 50, 50, 50, 150, 150, 150, 150, 150, 150}}
	FancyPCA(m, 1)
	up := []uint8{72, 72, 72, 72, 72, 72, 172, 172, 172, 172, 172, 172}
	down := []uint8{27, 27, 27, 27, 27, 27, 127, 127, 127, 127, 127, 127}
	if !reflect.DeepEqual(m.Pix, up) && !reflect.DeepEqual(m.Pix, down) {
		t.Errorf("FancyPCA = %v, want %v or %v", m.Pix, up, down)
	}
	vals, vecs := eigSym3([3][3]float64{{2, 1, 0}, {1, 2, 0}, {0, 0, 5}})
	got := []float64{vals[0], vals[1], vals[2]}
	for _, want := range []float64{1, 3, 5} {
		found := false
		for k, v := range got {
			if math.Abs(v-want) < 1e-9 {
				found = true
				// A v = λ v
				a := [3][3]float64{{2, 1, 0}, {1, 2, 0}, {0, 0, 5}}
				for r := 0; r < 3; r++ {
					s := 0.0
					for c := 0; c < 3; c++ {
						s += a[r][c] * vecs[c][k]
					}
					if math.Abs(s-v*vecs[r][k]) > 1e-9 {
						t.Errorf("eigenvector %d wrong", k)
					}
				}
			}
		}
		if !found {
			t.Errorf("eigenvalues %v lack %v", got, want)
		}
	}
}

func TestJPEG(t *testing.T) {
	img, _ := squareScene(64, 64, 16, 16, 32)
	hi, err := JPEG(img, 100)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := JPEG(img, 5)
	if err != nil {
		t.Fatal(err)
	}
	errHi, errLo := meanAbsDiff(img, hi), meanAbsDiff(img, lo)
	if hi.W != 64 || hi.H != 64 || hi.C != 3 {
		t.Fatalf("JPEG output %dx%dx%d", hi.W, hi.H, hi.C)
	}
	if errHi > 3 || errLo <= errHi || errLo < 1 {
		t.Errorf("mean error quality 100: %.2f, quality 5: %.2f", errHi, errLo)
	}
	g, err := JPEG(img.Gray(), 90)
	if err != nil || g.C != 1 {
		t.Fatalf("grey JPEG: %v, %v", g, err)
	}
}

func meanAbsDiff(a, b *Image) float64 {
	s := 0
	for i := range a.Pix {
		s += absDiff(a.Pix[i], b.Pix[i])
	}
	return float64(s) / float64(len(a.Pix))
}

func TestGaussianNoise(t *testing.T) {
	m := New(100, 100, 3)
	for i := range m.Pix {
		m.Pix[i] = 128
	}
	GaussianNoise(m, rand.New(rand.NewPCG(5, 6)), 5)
	var sum, sq float64
	for _, v := range m.Pix {
		d := float64(v) - 128
		sum += d
		sq += d * d
	}
	n := float64(len(m.Pix))
	mean, sd := sum/n, math.Sqrt(sq/n)
	// Truncation towards zero biases the mean by about -0.5.
	if math.Abs(mean+0.5) > 0.2 || math.Abs(sd-5) > 0.3 {
		t.Errorf("noise mean %.3f sd %.3f, want about -0.5 and 5", mean, sd)
	}
}

func BenchmarkApplyPaper299(b *testing.B) {
	img, mask := squareScene(299, 299, 100, 100, 80)
	for i := range img.Pix {
		img.Pix[i] ^= uint8(i * 31)
	}
	c := Paper(299)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Apply(rng, img, mask, mask); err != nil {
			b.Fatal(err)
		}
	}
}
