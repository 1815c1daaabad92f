package face

import (
	"flag"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

var docImage = flag.Bool("docimg", false, "write docs/img/landmarks.png from the FaceForensics++ example frames")

// faceAPIGolden holds what face-api 1.7.15 itself returns on the example
// frames (node 20, @tensorflow/tfjs 4.22 CPU backend,
// detectAllFaces(tensor, SsdMobilenetv1Options{minConfidence: 0.3})
// .withFaceLandmarks()): score, box (x, y, width, height) and landmarks.
// face-api shifts the landmarks by the box corner while it cropped the face
// at the floored corner; the comparison undoes that shift.
var faceAPIGolden = []struct {
	file      string
	score     float64
	box       [4]float64
	landmarks [68][2]float64
}{
	{"ex_original.png", 0.991643, [4]float64{294.6869, 60.2890, 97.4703, 131.0220}, [68][2]float64{{293.362, 101.323}, {292.960, 115.701}, {292.774, 129.045}, {293.374, 140.747}, {295.252, 154.584}, {301.134, 165.873}, {309.472, 174.448}, {320.659, 183.387}, {336.685, 190.332}, {352.984, 188.390}, {362.285, 183.411}, {370.168, 178.595}, {377.661, 169.280}, {383.879, 157.198}, {387.316, 145.606}, {391.298, 134.088}, {393.455, 121.388}, {312.564, 94.023}, {320.391, 91.867}, {328.240, 91.826}, {335.097, 93.573}, {341.048, 96.508}, {365.615, 101.047}, {371.256, 100.326}, {377.716, 100.935}, {384.678, 103.232}, {388.586, 107.095}, {350.721, 111.744}, {350.136, 120.148}, {349.517, 127.826}, {347.985, 134.922}, {337.583, 138.351}, {341.257, 140.312}, {345.722, 141.850}, {350.646, 141.510}, {354.029, 141.527}, {320.870, 105.170}, {326.411, 105.128}, {332.276, 105.704}, {336.809, 109.078}, {332.420, 110.127}, {325.764, 108.680}, {361.880, 113.404}, {368.160, 112.102}, {374.457, 113.339}, {377.181, 115.709}, {373.046, 117.333}, {366.708, 115.848}, {323.737, 154.259}, {331.341, 150.751}, {340.552, 149.628}, {344.643, 150.769}, {348.528, 150.666}, {356.550, 155.312}, {361.179, 160.541}, {354.224, 165.553}, {348.428, 167.642}, {341.834, 167.393}, {335.793, 165.579}, {329.812, 161.885}, {324.523, 154.481}, {337.332, 153.670}, {343.643, 154.650}, {349.254, 156.054}, {359.793, 160.265}, {348.614, 161.273}, {343.153, 161.191}, {337.158, 159.861}}},
	{"ex_deepfakes.png", 0.992574, [4]float64{294.7793, 58.7730, 96.2619, 131.5710}, [68][2]float64{{293.517, 105.992}, {293.443, 119.897}, {293.390, 132.960}, {294.230, 144.028}, {296.170, 156.971}, {301.894, 167.087}, {310.146, 174.226}, {320.750, 181.674}, {336.110, 188.220}, {351.642, 187.258}, {360.275, 184.152}, {367.718, 180.791}, {374.845, 172.775}, {381.464, 161.569}, {385.229, 150.469}, {389.578, 139.169}, {392.036, 127.283}, {312.680, 94.813}, {320.605, 91.663}, {328.453, 91.134}, {335.356, 92.587}, {341.370, 95.423}, {366.560, 100.246}, {372.180, 99.761}, {378.669, 100.761}, {385.312, 103.704}, {388.828, 109.158}, {351.067, 111.509}, {350.600, 119.369}, {350.081, 126.483}, {348.454, 133.447}, {338.392, 138.174}, {341.746, 139.832}, {345.782, 141.297}, {350.272, 141.256}, {353.328, 141.726}, {321.090, 106.172}, {326.566, 105.573}, {332.526, 106.223}, {336.998, 109.716}, {332.737, 110.867}, {325.953, 109.466}, {362.283, 114.565}, {368.573, 113.148}, {374.797, 114.559}, {377.479, 117.673}, {373.302, 119.044}, {367.020, 117.100}, {326.120, 154.979}, {333.057, 150.998}, {340.942, 149.512}, {344.366, 150.603}, {347.716, 150.574}, {354.207, 156.031}, {357.644, 162.010}, {352.037, 164.942}, {347.186, 166.294}, {341.579, 165.671}, {336.311, 163.975}, {331.275, 160.847}, {326.867, 155.106}, {337.950, 153.773}, {343.258, 154.761}, {347.772, 156.310}, {356.265, 161.586}, {347.395, 160.174}, {342.931, 159.685}, {337.907, 158.479}}},
}

func TestFaceAPIParity(t *testing.T) {
	d := detector(t, Options{InputSize: 512, SquareInput: true, MinScore: 0.3, NoRetry: true})
	for _, g := range faceAPIGolden {
		t.Run(g.file, func(t *testing.T) {
			img := loadRGBA(t, shared.Path(t, "data", "ffpp-examples", g.file))
			faces, err := d.Detect(img)
			if err != nil {
				t.Fatal(err)
			}
			if len(faces) != 1 {
				t.Fatalf("%d faces, face-api finds 1", len(faces))
			}
			f := faces[0]
			if d := math.Abs(float64(f.Score) - g.score); d > 1e-4 {
				t.Errorf("score %v, face-api %v", f.Score, g.score)
			}
			want := Box{float32(g.box[0]), float32(g.box[1]), float32(g.box[0] + g.box[2]), float32(g.box[1] + g.box[3])}
			var boxDiff float64
			for i, v := range [4]float32{f.Box.X0 - want.X0, f.Box.Y0 - want.Y0, f.Box.X1 - want.X1, f.Box.Y1 - want.Y1} {
				boxDiff = math.Max(boxDiff, math.Abs(float64(v)))
				_ = i
			}
			fx := g.box[0] - math.Floor(g.box[0])
			fy := g.box[1] - math.Floor(g.box[1])
			var lmDiff float64
			for i, p := range g.landmarks {
				lmDiff = math.Max(lmDiff, math.Abs(float64(f.Landmarks[i][0])+fx-p[0]))
				lmDiff = math.Max(lmDiff, math.Abs(float64(f.Landmarks[i][1])+fy-p[1]))
			}
			t.Logf("max difference to face-api: box %.2g px, landmarks %.2g px", boxDiff, lmDiff)
			if boxDiff > 0.01 || lmDiff > 0.01 {
				t.Errorf("box differs by %.3g px, landmarks by %.3g px (want < 0.01)", boxDiff, lmDiff)
			}
		})
	}
}

// mean returns the mean point of landmarks [a, b).
func mean(lm [NumLandmarks][2]float32, a, b int) (x, y float32) {
	for i := a; i < b; i++ {
		x += lm[i][0]
		y += lm[i][1]
	}
	n := float32(b - a)
	return x / n, y / n
}

func TestLandmarksOnExamples(t *testing.T) {
	d := detector(t, Options{})
	var drawn []*image.RGBA
	for _, name := range []string{"ex_original.png", "ex_deepfakes.png"} {
		img := loadRGBA(t, shared.Path(t, "data", "ffpp-examples", name))
		faces, err := d.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) != 1 {
			t.Fatalf("%s: %d faces, want 1", name, len(faces))
		}
		f := faces[0]
		lm := f.Landmarks
		_, browY := mean(lm, RightBrowStart, LeftBrowEnd)
		rex, rey := mean(lm, RightEyeStart, RightEyeEnd)
		lex, ley := mean(lm, LeftEyeStart, LeftEyeEnd)
		nx, ny := mean(lm, 30, 31) // nose tip
		mx, my := mean(lm, MouthStart, MouthEnd)
		_, chinY := mean(lm, 8, 9)
		w := f.Box.W()
		// Vertical order: brows, eyes, nose tip, mouth, chin.
		if !(browY < rey && browY < ley && rey < ny && ley < ny && ny < my && my < chinY) {
			t.Errorf("%s: vertical order wrong: brows %.0f, eyes %.0f/%.0f, nose %.0f, mouth %.0f, chin %.0f", name, browY, rey, ley, ny, my, chinY)
		}
		// The subject's right eye is on the image's left; nose and mouth
		// between the eyes.
		if !(rex < nx && nx < lex && rex < mx && mx < lex) {
			t.Errorf("%s: horizontal order wrong: eyes %.0f/%.0f, nose %.0f, mouth %.0f", name, rex, lex, nx, mx)
		}
		if d := lex - rex; d < 0.25*w || d > 0.7*w {
			t.Errorf("%s: eyes %.0f px apart in a %.0f px box", name, d, w)
		}
		// The jaw spans most of the face width.
		if span := lm[16][0] - lm[0][0]; span < 0.7*w {
			t.Errorf("%s: jaw spans %.0f px of a %.0f px wide box", name, span, w)
		}
		// All points inside the box (with a 5% margin).
		mx5, my5 := 0.05*w, 0.05*f.Box.H()
		for i, p := range lm {
			if p[0] < f.Box.X0-mx5 || p[0] > f.Box.X1+mx5 || p[1] < f.Box.Y0-my5 || p[1] > f.Box.Y1+my5 {
				t.Errorf("%s: landmark %d %v outside box %v", name, i, p, f.Box)
			}
		}
		// Drawing for the eyes of a person: the face region only.
		crop, cl, _ := Crop(img, f, CropOptions{Scale: 1.6, Size: 240})
		cf := Face{Box: Box{}, Landmarks: cl}
		cb := CropBox(f.Box, img.Rect, CropOptions{Scale: 1.6, Size: 240})
		k := 240 / cb.W()
		cf.Box = Box{(f.Box.X0 - cb.X0) * k, (f.Box.Y0 - cb.Y0) * k, (f.Box.X1 - cb.X0) * k, (f.Box.Y1 - cb.Y0) * k}
		Draw(crop, cf, color.RGBA{0, 255, 0, 255})
		drawn = append(drawn, crop)
	}
	sheet := image.NewRGBA(image.Rect(0, 0, 240*len(drawn), 240))
	for i, c := range drawn {
		for y := 0; y < 240; y++ {
			copy(sheet.Pix[y*sheet.Stride+i*240*4:], c.Pix[y*c.Stride:y*c.Stride+240*4])
		}
	}
	out := filepath.Join(t.TempDir(), "landmarks.png")
	if *docImage {
		out = filepath.Join("..", "docs", "img", "landmarks.png")
	}
	if err := writePNG(out, sheet); err != nil {
		t.Fatal(err)
	}
	t.Logf("landmarks drawn into %s", out)
}

// writePNG writes img atomically (temporary file in the same folder, then
// rename).
func writePNG(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".landmarks-*.png")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// scaled returns src resized by an integer-free factor with nearest
// neighbour sampling (good enough to make a second, smaller person).
func scaled(src *image.RGBA, w, h int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out.SetRGBA(x, y, src.RGBAAt(x*sw/w, y*sh/h))
		}
	}
	return out
}

func TestTwoFacesTracked(t *testing.T) {
	src := loadRGBA(t, shared.Path(t, "data", "ffpp-examples", "ex_original.png"))
	small := scaled(src, 400, 300)
	d := detector(t, Options{})
	tr := NewTracker(TrackerOptions{})
	var firstIDs [2]int
	for step := 0; step < 3; step++ {
		// A 1280x720 frame: the example on the left, a smaller copy on the
		// right; both move a few pixels per frame.
		frame := image.NewRGBA(image.Rect(0, 0, 1280, 720))
		dx := 6 * step
		paste(frame, src, 20+dx, 100)
		paste(frame, small, 800-dx, 250)
		faces, err := d.Detect(frame)
		if err != nil {
			t.Fatal(err)
		}
		if len(faces) != 2 {
			t.Fatalf("step %d: %d faces, want 2", step, len(faces))
		}
		if faces[0].Box.Area() < faces[1].Box.Area() {
			t.Errorf("step %d: not largest first: %v then %v", step, faces[0].Box, faces[1].Box)
		}
		cx0, _ := faces[0].Box.Center()
		cx1, _ := faces[1].Box.Center()
		if cx0 > 660 || cx1 < 800 {
			t.Errorf("step %d: large face at x=%.0f, small at x=%.0f", step, cx0, cx1)
		}
		tr.Update(faces)
		if step == 0 {
			firstIDs = [2]int{faces[0].TrackID, faces[1].TrackID}
		} else if faces[0].TrackID != firstIDs[0] || faces[1].TrackID != firstIDs[1] {
			t.Errorf("step %d: track ids %d, %d; want %v", step, faces[0].TrackID, faces[1].TrackID, firstIDs)
		}
	}
}

func paste(dst, src *image.RGBA, x, y int) {
	for r := 0; r < src.Rect.Dy(); r++ {
		copy(dst.Pix[(y+r)*dst.Stride+4*x:], src.Pix[r*src.Stride:r*src.Stride+4*src.Rect.Dx()])
	}
}

func TestDetectBatchMatchesDetect(t *testing.T) {
	a := loadRGBA(t, shared.Path(t, "data", "ffpp-examples", "ex_original.png"))
	b := loadRGBA(t, shared.Path(t, "data", "ffpp-examples", "ex_deepfakes.png"))
	c := scaled(a, 320, 240)
	d := detector(t, Options{})
	batch, err := d.DetectBatch([]*image.RGBA{a, c, b})
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range []*image.RGBA{a, c, b} {
		one, err := d.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != len(batch[i]) || len(one) == 0 {
			t.Fatalf("image %d: %d faces alone, %d in the batch", i, len(one), len(batch[i]))
		}
		for k := range one {
			if d := one[k].Box.IoU(batch[i][k].Box); d < 0.999 {
				t.Errorf("image %d face %d: box %v alone, %v in the batch", i, k, one[k].Box, batch[i][k].Box)
			}
		}
	}
}

func TestDetectBadInput(t *testing.T) {
	d, err := NewDetector(modelDir(t), Options{NoLandmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Detect(nil); err == nil {
		t.Error("nil image: no error")
	}
	if _, err := d.Detect(image.NewRGBA(image.Rect(0, 0, 0, 5))); err == nil {
		t.Error("empty image: no error")
	}
	// A picture without a face.
	grey := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range grey.Pix {
		grey.Pix[i] = 128
	}
	if faces, err := d.Detect(grey); err != nil || len(faces) != 0 {
		t.Errorf("grey picture: %d faces, %v", len(faces), err)
	}
	d.Close()
	d.Close()
	if _, err := d.Detect(grey); err == nil {
		t.Error("closed detector: no error")
	}
}
