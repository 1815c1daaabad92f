package detect

import (
	"image"
	"image/color"
	"image/draw"
	"testing"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/viz"
)

// TestDrawFaces draws two faces: both heat maps, outlines and scores, and
// one legend only, placed for the most suspicious face.
func TestDrawFaces(t *testing.T) {
	grey := color.RGBA{128, 128, 128, 255}
	base := image.NewRGBA(image.Rect(0, 0, 400, 300))
	draw.Draw(base, base.Rect, image.NewUniform(grey), image.Point{}, draw.Src)
	grid := func(v float64) [][]float64 { return [][]float64{{v, v}, {v, v}} }
	// a, less suspicious, in the top-right corner: drawn alone, its legend
	// would go top left. b, the most suspicious, bottom left: its legend
	// goes top right.
	a := mark{crop: face.Box{X0: 300, Y0: 60, X1: 390, Y1: 150}, patch: grid(0.1), pFake: 0.2, label: "real"}
	b := mark{crop: face.Box{X0: 20, Y0: 180, X1: 120, Y1: 280}, patch: grid(0.9), pFake: 0.9, label: "fake"}
	aAlone, err := viz.Overlay(base, rect(a.crop), flat(a.patch), 2, a.pFake, a.label)
	if err != nil {
		t.Fatal(err)
	}
	img, err := drawFaces(base, []mark{b, a})
	if err != nil {
		t.Fatal(err)
	}
	changed := func(im *image.RGBA, r image.Rectangle) int {
		n := 0
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if im.RGBAAt(x, y) != grey {
					n++
				}
			}
		}
		return n
	}
	topLeft := image.Rect(0, 0, 120, 120)
	if changed(aAlone, topLeft) == 0 {
		t.Fatal("test setup: face a alone does not put its legend top left")
	}
	if n := changed(img, topLeft); n != 0 {
		t.Errorf("%d pixels changed top left: a second legend", n)
	}
	if changed(img, image.Rect(330, 0, 400, 40)) == 0 {
		t.Error("no legend top right")
	}
	// Both heat maps and both outlines are there: the outline colour is
	// green for a (0.2) and red for b (0.9).
	if img.RGBAAt(340, 140) == grey || img.RGBAAt(70, 230) == grey {
		t.Error("a heat map is missing")
	}
	outA, outB := img.RGBAAt(298, 145), img.RGBAAt(18, 230)
	if !(outA.G > outA.R) || !(outB.R > outB.G) {
		t.Errorf("outlines %v (a, want green) and %v (b, want red)", outA, outB)
	}
	// The outline colours are never colours of the heat scale, so that
	// decorations tells outlines and chips from the legend.
	for v := 0.0; v <= 1; v += 1e-4 {
		if c := viz.HeatColor(v); c == outA || c == outB {
			t.Fatalf("heat colour of %v is an outline colour %v", v, c)
		}
	}
	// One face: exactly viz.Overlay.
	one, err := drawFaces(base, []mark{a})
	if err != nil {
		t.Fatal(err)
	}
	for i := range one.Pix {
		if one.Pix[i] != aAlone.Pix[i] {
			t.Fatal("one face is not drawn as viz.Overlay draws it")
		}
	}
	if _, err := drawFaces(base, []mark{{crop: face.Box{X0: 500, Y0: 500, X1: 600, Y1: 600}}}); err == nil {
		t.Error("a face outside the picture was drawn")
	}
}
