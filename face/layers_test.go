package face

import (
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/lvnet-go/lvnet/torch"
)

func TestSamePad(t *testing.T) {
	for _, tc := range []struct {
		in, k, s, before, after int64
	}{
		{512, 3, 2, 0, 1}, {512, 3, 1, 1, 1}, {7, 3, 2, 1, 1}, {5, 1, 1, 0, 0}, {288, 3, 2, 0, 1}, {9, 3, 2, 1, 1}, {1, 3, 2, 1, 1},
	} {
		b, a := samePad(tc.in, tc.k, tc.s)
		if b != tc.before || a != tc.after {
			t.Errorf("samePad(%d, k%d, s%d) = %d, %d; want %d, %d", tc.in, tc.k, tc.s, b, a, tc.before, tc.after)
		}
	}
}

func TestConvSame(t *testing.T) {
	// x[r][c] = 4r + c + 1 on a 4x4 map, a 3x3 kernel of ones. TensorFlow's
	// SAME padding puts the odd padding row and column after the map.
	x := make([]float32, 16)
	for i := range x {
		x[i] = float32(i + 1)
	}
	ones := make([]float32, 9)
	for i := range ones {
		ones[i] = 1
	}
	for _, tc := range []struct {
		stride int64
		act    activation
		want   []float32
	}{
		{2, actNone, []float32{54, 45, 72, 54}},
		{2, actRelu6, []float32{6, 6, 6, 6}},
		{1, actNone, []float32{14, 24, 30, 22, 33, 54, 63, 45, 57, 90, 99, 69, 46, 72, 78, 54}},
	} {
		s := torch.NewScope()
		c := conv2d{w: torch.FromSlice(s, ones, 1, 1, 3, 3), k: 3, stride: tc.stride, groups: 1, act: tc.act}
		got, err := torch.Data[float32](c.forward(torch.FromSlice(s, x, 1, 1, 4, 4)))
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("stride %d: %d outputs, want %d", tc.stride, len(got), len(tc.want))
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("stride %d act %d: out %v, want %v", tc.stride, tc.act, got, tc.want)
				break
			}
		}
	}
}

func TestFilterLayout(t *testing.T) {
	// A TF filter [kh=2, kw=1, in=2, out=3] with value 100*y + 10*i + o
	// must land at torch (o, i, y, x), scaled per output channel.
	data := make([]float32, 2*1*2*3)
	for y := 0; y < 2; y++ {
		for i := 0; i < 2; i++ {
			for o := 0; o < 3; o++ {
				data[(y*2+i)*3+o] = float32(100*y + 10*i + o)
			}
		}
	}
	ws := &weightSet{model: "t", m: map[string]tfWeight{
		"f": {Shape: []int{2, 1, 2, 3}, Data: data},
		"d": {Shape: []int{1, 2, 3, 1}, Data: []float32{1, 2, 3, 4, 5, 6}},
	}}
	defer ws.freeAll()
	w, k, out := ws.filter("f", []float32{1, 2, 3})
	if k != 2 || out != 3 {
		t.Fatalf("k %d out %d", k, out)
	}
	got, err := torch.Data[float32](w)
	if err != nil {
		t.Fatal(err)
	}
	for o := 0; o < 3; o++ {
		for i := 0; i < 2; i++ {
			for y := 0; y < 2; y++ {
				want := float32(100*y+10*i+o) * float32(o+1)
				if v := got[(o*2+i)*2+y]; v != want {
					t.Errorf("(o%d, i%d, y%d) = %v, want %v", o, i, y, v, want)
				}
			}
		}
	}
	dw, _, c := ws.depthwise("d", nil)
	if c != 3 {
		t.Fatalf("depthwise channels %d", c)
	}
	if got, _ := torch.Data[float32](dw); got[0] != 1 || got[1] != 4 || got[2] != 2 || got[5] != 6 {
		t.Errorf("depthwise layout %v, want channel-major [1 4 2 5 3 6]", got)
	}
	if shape := dw.Shape(); len(shape) != 4 || shape[0] != 3 || shape[1] != 1 || shape[2] != 1 || shape[3] != 2 {
		t.Errorf("depthwise shape %v, want [3 1 1 2]", shape)
	}
	ws.get("missing")
	if ws.err == nil {
		t.Error("no error for a missing weight")
	}
}

func TestSampler(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.SetRGBA(0, 0, color.RGBA{10, 0, 0, 255})
	img.SetRGBA(1, 0, color.RGBA{100, 0, 0, 255})
	img.SetRGBA(0, 1, color.RGBA{200, 0, 0, 255})
	img.SetRGBA(1, 1, color.RGBA{40, 0, 0, 255})
	red := func(s sampler) []float32 {
		s.Planar = true
		out := make([]float32, 3*s.W*s.H)
		s.fill(img, out)
		// Interleaved samples are the same values.
		s.Planar = false
		hwc := make([]float32, 3*s.W*s.H)
		s.fill(img, hwc)
		for i := 0; i < s.W*s.H; i++ {
			for c := 0; c < 3; c++ {
				if hwc[3*i+c] != out[c*s.W*s.H+i] {
					t.Fatalf("interleaved sample %d channel %d = %v, planar %v", i, c, hwc[3*i+c], out[c*s.W*s.H+i])
				}
			}
		}
		return out[:s.W*s.H]
	}
	// TensorFlow's legacy bilinear upsampling 2x2 -> 4x4: source i/2,
	// neighbours clamped to the last row and column.
	got := red(sampler{Valid: img.Rect, Side: 2, Scale: 0.5, W: 4, H: 4, Mul: 1})
	want := []float32{10, 55, 100, 100, 105, 87.5, 70, 70, 200, 120, 40, 40, 200, 120, 40, 40}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4 {
			t.Fatalf("upsampled %v, want %v", got, want)
		}
	}
	// Canvas pixels outside the valid rectangle read as 0 before the
	// normalisation value*Mul + Add.
	got = red(sampler{Valid: img.Rect, Origin: image.Pt(-1, 0), Side: 3, Scale: 1, W: 3, H: 2, Mul: 2, Add: [3]float32{1, 0, 0}})
	want = []float32{1, 21, 201, 1, 401, 81}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("offset %v, want %v", got, want)
		}
	}
}

func TestAnchors(t *testing.T) {
	count := func(h, w int) int { return len(ssdAnchors(h, w)) / 4 }
	if n := count(512, 512); n != 5118 {
		t.Errorf("512x512: %d anchors, want 5118", n)
	}
	// 288x512: grids 18x32, 9x16, 5x8, 3x4, 2x2, 1x1.
	if n, want := count(288, 512), 18*32*3+(9*16+5*8+3*4+2*2+1)*6; n != want {
		t.Errorf("288x512: %d anchors, want %d", n, want)
	}
	a := ssdAnchors(512, 512)
	// First cell of the first map: centre (8, 8); boxes of scale 0.1 at
	// ratio 1 and of scale 0.2 at ratios 2 and 1/2, of the 512 input.
	want := []float32{8, 8, 51.2, 51.2, 8, 8, 102.4 / float32(math.Sqrt2), 102.4 * float32(math.Sqrt2), 8, 8, 102.4 * float32(math.Sqrt2), 102.4 / float32(math.Sqrt2)}
	for i := range want {
		if math.Abs(float64(a[i]-want[i])) > 1e-3 {
			t.Fatalf("first anchors %v, want %v", a[:12], want)
		}
	}
	// The last anchor: the single cell of the 1x1 map (centre 256), scale
	// 0.95 at ratio 1/3.
	last := a[len(a)-4:]
	if math.Abs(float64(last[0]-256)) > 1e-3 || math.Abs(float64(last[2]-0.95*512*float32(math.Sqrt(3)))) > 0.1 {
		t.Errorf("last anchor %v", last)
	}
}

func TestGridSizes(t *testing.T) {
	for _, tc := range []struct {
		in   int
		want [6]int
	}{
		{512, [6]int{32, 16, 8, 4, 2, 1}},
		{288, [6]int{18, 9, 5, 3, 2, 1}},
		{320, [6]int{20, 10, 5, 3, 2, 1}},
	} {
		if got := gridSizes(tc.in); got != tc.want {
			t.Errorf("gridSizes(%d) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestDecode(t *testing.T) {
	d := &Detector{opts: Options{}.withDefaults()}
	logit := func(p float64) float32 { return float32(math.Log(p / (1 - p))) }
	anchors := []float32{
		50, 50, 20, 20, // a0
		50, 50, 20, 20, // a1: same place, a bit lower score: suppressed
		200, 200, 40, 40, // a2: taller box, larger: first
		300, 300, 20, 20, // a3: below the threshold
		400, 400, 2, 2, // a4: tiny
	}
	loc := []float32{
		0, 0, 0, 0,
		1, 0, 0, 0,
		0, 0, float32(5 * math.Ln2), 0,
		0, 0, 0, 0,
		0, 0, 0, 0,
	}
	cls := []float32{0, logit(0.9), 0, 0, logit(0.8), 0, 0, logit(0.7), 0, 0, logit(0.4), 0, 0, logit(0.95), 0}
	g := geometry{scale: 2, imgW: 1000, imgH: 1000}
	faces := d.decode(loc, cls, anchors, g)
	want := []Face{
		{Box: Box{360, 320, 440, 480}, Score: 0.7},
		{Box: Box{80, 80, 120, 120}, Score: 0.9},
		{Box: Box{798, 798, 802, 802}, Score: 0.95}, // (400±1)*2
	}
	if len(faces) != len(want) {
		t.Fatalf("faces %+v, want %+v", faces, want)
	}
	for i := range want {
		b, w := faces[i].Box, want[i].Box
		if math.Abs(float64(b.X0-w.X0))+math.Abs(float64(b.Y0-w.Y0))+math.Abs(float64(b.X1-w.X1))+math.Abs(float64(b.Y1-w.Y1)) > 1e-3 ||
			math.Abs(float64(faces[i].Score-want[i].Score)) > 1e-6 {
			t.Errorf("face %d: %+v, want %+v", i, faces[i], want[i])
		}
	}
	d.opts.MinSize = 10
	d.opts.MaxFaces = 1
	if faces := d.decode(loc, cls, anchors, g); len(faces) != 1 || faces[0].Score != 0.7 {
		t.Errorf("MinSize 10, MaxFaces 1: %+v, want the largest face only", faces)
	}
}

func TestLandmarkRegion(t *testing.T) {
	for _, tc := range []struct {
		b    Box
		want image.Rectangle
	}{
		{Box{294.7, 60.3, 392.2, 191.3}, image.Rect(294, 60, 294+97, 60+131)},
		{Box{-10.5, -3, 50.9, 40}, image.Rect(0, 0, 50, 40)},
		{Box{600, 400, 700, 520}, image.Rect(600, 400, 640, 480)},
	} {
		if got := landmarkRegion(tc.b, 640, 480); got != tc.want {
			t.Errorf("landmarkRegion(%v) = %v, want %v", tc.b, got, tc.want)
		}
	}
}
