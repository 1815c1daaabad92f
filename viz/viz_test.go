package viz

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testFrame is a w x h image with a smooth pattern, at origin o.
func testFrame(o image.Point, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rectangle{Min: o, Max: o.Add(image.Pt(w, h))})
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(o.X+x, o.Y+y, color.RGBA{uint8(100 + x%50), uint8(120 + y%40), 130, 255})
		}
	}
	return img
}

func TestTurbo(t *testing.T) {
	lo, blue, mid, hi := Turbo(0), Turbo(0.15), Turbo(0.5), Turbo(1)
	if !(blue.B > blue.R && blue.B > blue.G) {
		t.Errorf("Turbo(0.15) = %v, want blue dominant", blue)
	}
	if max(lo.R, lo.G, lo.B) > 60 {
		t.Errorf("Turbo(0) = %v, want near black", lo)
	}
	if !(mid.G > mid.R && mid.G > mid.B) {
		t.Errorf("Turbo(0.5) = %v, want green dominant", mid)
	}
	if !(int(hi.R) > 3*int(hi.G)/2 && hi.R > hi.B) {
		t.Errorf("Turbo(1) = %v, want red dominant", hi)
	}
	if Turbo(-3) != lo || Turbo(7) != hi || Turbo(math.NaN()) != lo {
		t.Error("Turbo does not clamp out-of-range input")
	}
	if c := HeatColor(0); !(c.B > c.R && c.B > 150) {
		t.Errorf("HeatColor(0) = %v, want a clear blue", c)
	}
}

func TestHeatmap(t *testing.T) {
	// 2x2 -> 4 wide, 2 high: rows keep their values, columns blend as
	// 0, .25, .75, 1 of the way (align_corners=False).
	got, err := Heatmap([]float64{0, 1, 1, 1}, 2, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 0.25, 0.75, 1, 1, 1, 1, 1}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("Heatmap = %v, want %v", got, want)
		}
	}
	if _, err := Heatmap([]float64{0, 1}, 2, 4, 4); err == nil {
		t.Error("Heatmap accepted 2 values for a 2x2 map")
	}
}

// TestOverlayRegions checks that only the box (with its outline), the score
// chip and the legend change, and that each of them does.
func TestOverlayRegions(t *testing.T) {
	tests := []struct {
		name   string
		origin image.Point
		box    image.Rectangle
		grid   []float64
	}{
		{"map", image.Pt(0, 0), image.Rect(120, 90, 220, 200), make([]float64, 19*19)},
		{"offset image", image.Pt(-40, 30), image.Rect(0, 100, 90, 190), make([]float64, 19*19)},
		{"box at the top edge", image.Pt(0, 0), image.Rect(30, 0, 130, 100), make([]float64, 4)},
		{"no map", image.Pt(0, 0), image.Rect(120, 90, 220, 200), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := testFrame(tc.origin, 400, 300)
			g := int(math.Sqrt(float64(len(tc.grid))))
			img, l, err := overlay(base, tc.box, tc.grid, g, 0.93, "fake", fontPx(base.Bounds()))
			if err != nil {
				t.Fatal(err)
			}
			if img.Bounds() != base.Bounds() {
				t.Fatalf("bounds %v, want %v", img.Bounds(), base.Bounds())
			}
			changed := map[string]int{}
			b := base.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					if img.RGBAAt(x, y) == base.RGBAAt(x, y) {
						continue
					}
					p := image.Pt(x, y)
					switch {
					case p.In(l.heat):
						changed["heat"]++
					case p.In(l.outline):
						changed["outline"]++
					case p.In(l.chip):
						changed["chip"]++
					case p.In(l.legend):
						changed["legend"]++
					default:
						t.Fatalf("pixel %v changed outside box, chip and legend (%+v)", p, l)
					}
				}
			}
			for _, region := range []string{"outline", "chip", "legend"} {
				if changed[region] == 0 {
					t.Errorf("nothing drawn in the %s", region)
				}
			}
			heatPixels := l.heat.Dx() * l.heat.Dy()
			if tc.grid != nil && changed["heat"] < heatPixels*9/10 {
				t.Errorf("heat map changed %d of %d box pixels", changed["heat"], heatPixels)
			}
			if tc.grid == nil && changed["heat"] != 0 {
				t.Errorf("without a map %d box pixels changed", changed["heat"])
			}
			if !l.chip.Intersect(l.legend).Empty() || !l.outline.Intersect(l.legend).Empty() {
				t.Errorf("legend %v overlaps the box %v or chip %v", l.legend, l.outline, l.chip)
			}
			if l.chip.Min.Y >= tc.box.Min.Y && tc.box.Min.Y-l.thick-l.chip.Dy() >= b.Min.Y {
				t.Errorf("score chip %v not above the box %v although there is room", l.chip, tc.box)
			}
		})
	}
}

func TestOverlayTopLeftRedder(t *testing.T) {
	base := testFrame(image.Point{}, 320, 240)
	box := image.Rect(100, 50, 290, 240) // 190 x 190
	grid := make([]float64, 19*19)
	grid[0] = 1
	img, err := Overlay(base, box, grid, 19, 0.8, "fake")
	if err != nil {
		t.Fatal(err)
	}
	// Mean red-minus-blue over a 10x10 patch-sized corner of the box.
	redness := func(r image.Rectangle) float64 {
		var s float64
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				c := img.RGBAAt(x, y)
				s += float64(c.R) - float64(c.B)
			}
		}
		return s / float64(r.Dx()*r.Dy())
	}
	tl := redness(image.Rect(box.Min.X, box.Min.Y, box.Min.X+10, box.Min.Y+10))
	br := redness(image.Rect(box.Max.X-10, box.Max.Y-10, box.Max.X, box.Max.Y))
	if tl <= br+50 {
		t.Errorf("top-left redness %.1f not clearly above bottom-right %.1f", tl, br)
	}
}

func TestOverlayBadInput(t *testing.T) {
	base := testFrame(image.Point{}, 100, 100)
	tests := []struct {
		name  string
		box   image.Rectangle
		grid  []float64
		g     int
		score float64
		want  string
	}{
		{"short map", image.Rect(10, 10, 50, 50), make([]float64, 10), 19, 0.5, "10 values, want 19x19"},
		{"nan map", image.Rect(10, 10, 50, 50), []float64{0, math.NaN(), 0, 0}, 2, 0.5, "patch 1 is NaN"},
		{"nan score", image.Rect(10, 10, 50, 50), nil, 0, math.NaN(), "score is NaN"},
		{"box outside", image.Rect(200, 200, 250, 250), nil, 0, 0.5, "outside the image"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Overlay(base, tc.box, tc.grid, tc.g, tc.score, "fake")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPanel(t *testing.T) {
	face := testFrame(image.Point{}, 160, 160)
	p, err := Panel(face, make([]float64, 361), 19, 0.1, "real")
	if err != nil {
		t.Fatal(err)
	}
	// The crop is enlarged to 320 and framed with room for chip and legend.
	if b := p.Bounds(); b.Dx() < 320+100 || b.Dy() < 320+20 {
		t.Errorf("panel %v too small for a 320x320 face plus margins", b)
	}
	if _, err := Panel(image.NewRGBA(image.Rectangle{}), nil, 0, 0.5, "x"); err == nil {
		t.Error("Panel accepted an empty image")
	}
}

func TestGrid(t *testing.T) {
	a := testFrame(image.Point{}, 100, 80)
	big := testFrame(image.Pt(5, 5), 800, 400) // shrunk to 400 x 200
	tests := []struct {
		name         string
		images       []image.Image
		cols         int
		captions     []string
		wantW, wantH int
	}{
		// Cells 100 x 80, no captions: 10 + 2*(100+10) by 10 + 2*(80+10).
		{"two columns", []image.Image{a, a, a}, 2, nil, 230, 190},
		{"auto columns", []image.Image{a, a, a, a}, 0, nil, 230, 190},
		{"one row", []image.Image{a, nil}, 5, nil, 230, 100},
		// Cell 400 wide; height of the tallest shrunk image (200).
		{"shrunk", []image.Image{big, a}, 2, nil, 10 + 2*410, 10 + 210},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Grid(tc.images, tc.cols, tc.captions)
			if s.Bounds().Dx() != tc.wantW || s.Bounds().Dy() != tc.wantH {
				t.Errorf("sheet %v, want %dx%d", s.Bounds(), tc.wantW, tc.wantH)
			}
		})
	}
	// The first image is copied unscaled into the first cell.
	s := Grid([]image.Image{a, a}, 2, []string{"first", "a caption far too long to fit under a cell that is only a hundred pixels wide"})
	if got, want := s.RGBAAt(10+7, 10+3), a.RGBAAt(7, 3); got != want {
		t.Errorf("cell pixel %v, want %v", got, want)
	}
	if s.Bounds().Dy() <= 100 {
		t.Errorf("captions added no height: %v", s.Bounds())
	}
	if e := Grid(nil, 3, nil); e.Bounds().Empty() {
		t.Error("empty sheet has no size")
	}
}

func TestWritePNG(t *testing.T) {
	dir := t.TempDir()
	img := testFrame(image.Point{}, 37, 21)
	path := filepath.Join(dir, "x.png")
	if err := WritePNG(path, img); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Bounds() != img.Bounds() {
		t.Fatalf("decoded %v, want %v", dec.Bounds(), img.Bounds())
	}
	for y := 0; y < 21; y++ {
		for x := 0; x < 37; x++ {
			if color.RGBAModel.Convert(dec.At(x, y)) != img.At(x, y) {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, dec.At(x, y), img.At(x, y))
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only x.png (temp file left?)", len(entries))
	}
	bad := filepath.Join(dir, "missing", "y.png")
	if err := WritePNG(bad, img); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("write into a missing directory: %v, want an error naming %s", err, bad)
	}
}

func BenchmarkOverlay(b *testing.B) {
	base := testFrame(image.Point{}, 1280, 720)
	grid := make([]float64, 361)
	for i := range grid {
		grid[i] = float64(i) / 361
	}
	for b.Loop() {
		if _, err := Overlay(base, image.Rect(500, 100, 800, 400), grid, 19, 0.7, "fake"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPanel(b *testing.B) {
	face := testFrame(image.Point{}, 64, 64)
	for b.Loop() {
		if _, err := Panel(face, make([]float64, 4), 2, 0.7, "fake"); err != nil {
			b.Fatal(err)
		}
	}
}
