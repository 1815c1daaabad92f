package sbi

import (
	"flag"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
)

var (
	sheetPath = flag.String("sheet", "", "write a contact sheet of self-blended UTKFace faces to this PNG")
	docImage  = flag.Bool("docimg", false, "write docs/img/sbi.png (a small sheet of self-blended UTKFace faces)")
)

// realDetector loads the face detector for tight crops, skipping the test
// when the models are not installed.
func realDetector(tb testing.TB) *face.Detector {
	tb.Helper()
	dir := face.DefaultModelDir()
	if _, err := os.Stat(filepath.Join(dir, "ssd_mobilenetv1_model-weights_manifest.json")); err != nil {
		tb.Skipf("face models not installed in %s (run scripts/fetch-face-models.sh): %v", dir, err)
	}
	d, err := face.NewDetector(dir, face.TightOptions())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// utkFaces returns n UTKFace images spread over the folder (sorted names).
func utkFaces(tb testing.TB, n int) []string {
	dir := shared.Path(tb, "data", "utkface")
	es, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	out := make([]string, n)
	for i := range out {
		out[i] = filepath.Join(dir, names[i*len(names)/n])
	}
	return out
}

// TestBlendRealFaces blends detected UTKFace faces: the image changes only
// inside the mask, the mask stays within the bound around the landmarks'
// hull, and the blend mask is not trivially small. With -sheet or -docimg
// it draws contact sheets (face | blend | mask | blend with the mask's
// outline) for inspection.
func TestBlendRealFaces(t *testing.T) {
	n := 6
	if *sheetPath != "" {
		n = 12
	}
	files := utkFaces(t, n)
	det := realDetector(t)
	type row struct{ face, blend, mask *image.RGBA }
	var rows []row
	for i, f := range files {
		img, err := media.DecodeImage(f)
		if err != nil {
			t.Fatal(err)
		}
		faces, err := det.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) == 0 {
			t.Logf("%s: no face found", filepath.Base(f))
			continue
		}
		lm := faces[0].Landmarks
		out, mask, err := Blend(img, lm, rand.New(rand.NewPCG(uint64(i), 42)), Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		outer := outerHull(lm)
		bound := blendBound(Options{}, lm, img.Rect.Dx(), img.Rect.Dy())
		var worst float64
		area := 0
		for y := 0; y < img.Rect.Dy(); y++ {
			for x := 0; x < img.Rect.Dx(); x++ {
				m := mask.Pix[y*mask.Stride+x]
				i := img.PixOffset(x, y)
				if m == 0 && (out.Pix[i] != img.Pix[i] || out.Pix[i+1] != img.Pix[i+1] || out.Pix[i+2] != img.Pix[i+2]) {
					t.Fatalf("%s: pixel (%d,%d) changed outside the mask", f, x, y)
				}
				if m > 0 {
					area++
					worst = math.Max(worst, distToPolygon(pt{float64(x) + 0.5, float64(y) + 0.5}, outer))
				}
			}
		}
		if worst > bound {
			t.Errorf("%s: mask reaches %.1f px outside the landmarks' hull, bound %.1f", filepath.Base(f), worst, bound)
		}
		if area < img.Rect.Dx()*img.Rect.Dy()/10 {
			t.Errorf("%s: mask covers only %d pixels", filepath.Base(f), area)
		}
		rows = append(rows, row{img, out, grayRGBA(mask)})
	}
	if len(rows) < n-1 {
		t.Errorf("faces found in only %d of %d UTKFace images", len(rows), n)
	}
	if *sheetPath == "" && !*docImage {
		return
	}
	sheet := func(rs []row, cols int, scale int) *image.RGBA {
		s := rs[0].face.Rect.Dx() / scale
		per := 3
		out := image.NewRGBA(image.Rect(0, 0, cols*per*s+(cols-1)*6, ((len(rs)+cols-1)/cols)*s))
		draw.Draw(out, out.Rect, image.NewUniform(color.White), image.Point{}, draw.Src)
		for k, r := range rs {
			x0 := (k % cols) * (per*s + 6)
			y0 := (k / cols) * s
			for j, im := range []*image.RGBA{r.face, r.blend, r.mask} {
				shrink(out, image.Pt(x0+j*s, y0), im, scale)
			}
		}
		return out
	}
	if *sheetPath != "" {
		writePNG(t, *sheetPath, sheet(rows, 2, 1))
	}
	if *docImage {
		writePNG(t, filepath.Join("..", "docs", "img", "sbi.png"), sheet(rows[:min(4, len(rows))], 2, 2))
	}
}

func grayRGBA(g *image.Gray) *image.RGBA {
	out := image.NewRGBA(g.Rect)
	for i, v := range g.Pix {
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = v, v, v, 255
	}
	return out
}

// shrink draws src into dst at p, averaging scale x scale blocks.
func shrink(dst *image.RGBA, p image.Point, src *image.RGBA, scale int) {
	w, h := src.Rect.Dx()/scale, src.Rect.Dy()/scale
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var s [3]int
			for dy := 0; dy < scale; dy++ {
				for dx := 0; dx < scale; dx++ {
					i := src.PixOffset(x*scale+dx, y*scale+dy)
					for c := 0; c < 3; c++ {
						s[c] += int(src.Pix[i+c])
					}
				}
			}
			j := dst.PixOffset(p.X+x, p.Y+y)
			for c := 0; c < 3; c++ {
				dst.Pix[j+c] = uint8(s[c] / (scale * scale))
			}
			dst.Pix[j+3] = 255
		}
	}
}

func writePNG(tb testing.TB, path string, img image.Image) {
	tb.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sheet-*.png")
	if err != nil {
		tb.Fatal(err)
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(tmp, img); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		tb.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("wrote %s", path)
}
