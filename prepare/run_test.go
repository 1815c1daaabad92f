package prepare

import (
	"context"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/media"
)

// boxDetector "detects" fixed faces in every image, with landmarks 0 and 1
// on the top-left and bottom-right corners of each box.
type boxDetector struct {
	mu    sync.Mutex
	boxes []face.Box
	calls int
	// cancel, when set, is called once calls reaches cancelAt.
	cancel   func()
	cancelAt int
}

func (d *boxDetector) DetectBatch(imgs []*image.RGBA) ([][]face.Face, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([][]face.Face, len(imgs))
	for i := range imgs {
		d.calls++
		if d.cancel != nil && d.calls == d.cancelAt {
			d.cancel()
		}
		for _, b := range d.boxes {
			f := face.Face{Box: b, Score: 0.9}
			cx, cy := b.Center()
			for k := range f.Landmarks {
				f.Landmarks[k] = [2]float32{cx, cy}
			}
			f.Landmarks[0] = [2]float32{b.X0, b.Y0}
			f.Landmarks[1] = [2]float32{b.X1, b.Y1}
			out[i] = append(out[i], f)
		}
	}
	return out, nil
}

func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func readRGBA(t testing.TB, path string) *image.RGBA {
	t.Helper()
	img, err := media.DecodeImage(path)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// coordFrame is a w x h frame whose red and green channels hold the pixel's
// x and y, so that any crop tells where it was cut.
func coordFrame(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(x), uint8(y), 128, 255
		}
	}
	return img
}

func quiet() Options { return Options{Log: io.Discard} }

// TestCropGeometry prepares a frame with a known face box: the crop is the
// box's square enlarged 1.3 times, the mask is cut with the same geometry
// and the landmarks land on the box corners in crop coordinates.
func TestCropGeometry(t *testing.T) {
	tests := []struct {
		name   string
		box    face.Box
		size   int
		clamp  bool
		origin [2]float64 // crop square's top-left corner in the frame
	}{
		// 40 px box at (80, 50): 52 px square from (74, 44); size 52 is
		// a plain copy, size 104 doubles.
		{"copy", face.Box{X0: 80, Y0: 50, X1: 120, Y1: 90}, 52, false, [2]float64{74, 44}},
		{"double", face.Box{X0: 80, Y0: 50, X1: 120, Y1: 90}, 104, false, [2]float64{74, 44}},
		// At the corner the square reaches out of the frame (black), or is
		// moved inside with Clamp.
		{"border padded", face.Box{X0: 0, Y0: 0, X1: 40, Y1: 40}, 52, false, [2]float64{-6, -6}},
		{"border clamped", face.Box{X0: 0, Y0: 0, X1: 40, Y1: 40}, 52, true, [2]float64{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeImage(t, filepath.Join(dir, "in", "fake", "frame.png"), coordFrame(200, 160))
			// The mask marks the inner square 10-30 px right of and below
			// the box corner.
			bx, by := int(tc.box.X0), int(tc.box.Y0)
			m := image.NewGray(image.Rect(0, 0, 200, 160))
			for y := by + 10; y < by+30; y++ {
				for x := bx + 10; x < bx+30; x++ {
					m.Pix[y*m.Stride+x] = 255
				}
			}
			writeImage(t, filepath.Join(dir, "masks", "fake", "frame.png"), m)
			o := quiet()
			o.Out, o.Size, o.Clamp = filepath.Join(dir, "out"), tc.size, tc.clamp
			o.Masks = filepath.Join(dir, "masks")
			o.Detector = &boxDetector{boxes: []face.Box{tc.box}}
			st, err := Run(context.Background(), []string{filepath.Join(dir, "in", "fake")}, o)
			if err != nil {
				t.Fatal(err)
			}
			if st.Jobs != 1 || st.Done != 1 || st.Crops != 1 {
				t.Fatalf("stats %+v", st)
			}
			es, err := data.ReadIndex(filepath.Join(o.Out, data.IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			e := es[0]
			if e.Image != "fake/fake/frame.png/0000.png" || e.Mask != "masks/fake/frame.png/0000.png" || e.Label != 1 || e.Video != "fake/frame.png" || e.Frame != 0 {
				t.Fatalf("entry %+v", e)
			}
			k := float64(tc.size) / 52
			// Landmarks 0 and 1 sit on the box corners.
			for i, p := range []float32{tc.box.X0, tc.box.X1} {
				want := (float64(p) - tc.origin[0]) * k
				if d := float64(e.Landmarks[i][0]) - want; d > 1e-3 || d < -1e-3 {
					t.Errorf("landmark %d x = %v, want %v", i, e.Landmarks[i][0], want)
				}
			}
			crop := readRGBA(t, filepath.Join(o.Out, e.Image))
			mask := readRGBA(t, filepath.Join(o.Out, e.Mask))
			if crop.Rect.Dx() != tc.size || mask.Rect.Dx() != tc.size {
				t.Fatalf("crop %v, mask %v, want %d px", crop.Rect, mask.Rect, tc.size)
			}
			for v := 0; v < tc.size; v++ {
				for u := 0; u < tc.size; u++ {
					// The frame point seen by crop pixel u (pixel centres).
					x := tc.origin[0] + (float64(u)+0.5)/k - 0.5
					y := tc.origin[1] + (float64(v)+0.5)/k - 0.5
					i := crop.PixOffset(u, v)
					r, g := float64(crop.Pix[i]), float64(crop.Pix[i+1])
					switch {
					case x < -0.5 || y < -0.5:
						if r != 0 || g != 0 || crop.Pix[i+2] != 0 {
							t.Fatalf("crop (%d,%d) outside the frame is %v, want black", u, v, crop.Pix[i:i+3])
						}
					case x >= 0 && y >= 0:
						if r-x > 0.51 || x-r > 0.51 || g-y > 0.51 || y-g > 0.51 {
							t.Fatalf("crop (%d,%d) shows frame (%v,%v), want (%.2f,%.2f)", u, v, r, g, x, y)
						}
					}
					// Mask: white exactly where the inner square is.
					in := x >= float64(bx)+9.5 && x < float64(bx)+29.5 && y >= float64(by)+9.5 && y < float64(by)+29.5
					if mv := mask.Pix[mask.PixOffset(u, v)]; (mv == 255) != in || (mv != 0 && mv != 255) {
						t.Fatalf("mask (%d,%d) = %d, frame point (%.2f,%.2f) inside the square: %v", u, v, mv, x, y, in)
					}
				}
			}
		})
	}
}

// ffmpegVideo encodes n copies of a picture (scaled to w x h) as an H.264
// video, lossless so that masks stay binary.
func ffmpegVideo(t testing.TB, out, picture string, n, w, h int) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", picture,
		"-frames:v", itoa(n), "-r", "5", "-vf", "scale="+itoa(w)+":"+itoa(h),
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv444p", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestTracksAndSampling prepares a short video in which the detector sees a
// large and a small face in every frame: by default only the large face's
// track is kept, with --all-faces both, each in its own folder; --every and
// --frames pick the frame numbers.
func TestTracksAndSampling(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "frame.png"), coordFrame(64, 48))
	video := filepath.Join(dir, "clips", "fake", "v.mp4")
	ffmpegVideo(t, video, filepath.Join(dir, "frame.png"), 5, 64, 48)
	big := face.Box{X0: 8, Y0: 8, X1: 40, Y1: 40}
	small := face.Box{X0: 44, Y0: 4, X1: 60, Y1: 20}
	tests := []struct {
		name       string
		all        bool
		every      int
		frames     int
		wantFrames []int
		wantVideos []string
	}{
		{"largest", false, 0, 0, []int{0, 1, 2, 3, 4}, []string{"v.mp4"}},
		{"all faces", true, 0, 0, []int{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}, []string{"v.mp4/face1", "v.mp4/face2"}},
		{"every 2", false, 2, 0, []int{0, 2, 4}, []string{"v.mp4"}},
		{"frames 2", false, 0, 2, []int{0, 4}, []string{"v.mp4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := quiet()
			o.Out, o.Size, o.AllFaces, o.Every, o.Frames = filepath.Join(t.TempDir(), "out"), 32, tc.all, tc.every, tc.frames
			o.Detector = &boxDetector{boxes: []face.Box{small, big}} // not in size order: the tracker must not care
			if _, err := Run(context.Background(), []string{video}, o); err != nil {
				t.Fatal(err)
			}
			es, err := data.ReadIndex(filepath.Join(o.Out, data.IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			var frames []int
			videos := map[string]bool{}
			for _, e := range es {
				frames = append(frames, e.Frame)
				videos[e.Video] = true
				crop := readRGBA(t, filepath.Join(o.Out, e.Image))
				// The red channel at the crop's centre is the x of the
				// face's centre: 24 for the large face, 52 for the small.
				r := int(crop.Pix[crop.PixOffset(16, 16)])
				isBig := r >= 22 && r <= 26
				if !tc.all && !isBig {
					t.Errorf("%s: centre x %d, want the large face (24)", e.Image, r)
				}
				if tc.all && isBig != strings.HasSuffix(e.Video, "face2") {
					t.Errorf("%s (video %s): centre x %d", e.Image, e.Video, r)
				}
			}
			if !slices.Equal(frames, tc.wantFrames) {
				t.Errorf("frames %v, want %v", frames, tc.wantFrames)
			}
			for _, v := range tc.wantVideos {
				if !videos[v] || len(videos) != len(tc.wantVideos) {
					t.Errorf("videos %v, want %v", videos, tc.wantVideos)
					break
				}
			}
		})
	}
}

func TestRunBadOptions(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "real", "a.png"), coordFrame(8, 8))
	ff := t.TempDir()
	touch(t, ff, "original_sequences/youtube/c23/videos/000.mp4", "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4")
	in := []string{filepath.Join(dir, "real")}
	out := filepath.Join(t.TempDir(), "out")
	tests := []struct {
		name   string
		inputs []string
		o      Options
		want   string
	}{
		{"no out", in, Options{}, "no output directory"},
		{"no inputs", nil, Options{Out: out}, "no inputs"},
		{"negative every", in, Options{Out: out, Every: -1}, "negative sampling"},
		{"bad label", in, Options{Out: out, Label: "maybe"}, `label "maybe"`},
		{"bad layout", in, Options{Out: out, Layout: "flat"}, `unknown layout "flat"`},
		{"authors on plain", in, Options{Out: out, Layout: LayoutAuthors}, "is not one"},
		{"authors and all faces", []string{ff}, Options{Out: out, AllFaces: true}, "one face per frame"},
		{"masks with ffpp", []string{ff}, Options{Out: out, Masks: dir}, "brings its own masks"},
		{"methods on plain", in, Options{Out: out, Methods: []string{"Deepfakes"}}, "not one"},
		{"mask threshold", in, Options{Out: out, MaskThreshold: 300}, "mask threshold 300"},
		{"missing input", []string{filepath.Join(dir, "nope")}, Options{Out: out}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Log = io.Discard
			tc.o.Detector = &boxDetector{}
			_, err := Run(context.Background(), tc.inputs, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestRunDamagedInputs: an unreadable image is warned about and counted,
// a picture without a face counted, and both marked done (not retried).
func TestRunDamagedInputs(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "real", "ok.png"), coordFrame(40, 40))
	if err := os.WriteFile(filepath.Join(dir, "real", "bad.png"), []byte("not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	o := Options{Out: filepath.Join(t.TempDir(), "out"), Log: &log, Size: 32, Detector: &boxDetector{}}
	st, err := Run(context.Background(), []string{filepath.Join(dir, "real")}, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != 2 || st.Failed != 1 || st.NoFace != 1 || st.Crops != 0 {
		t.Errorf("stats %+v, want 2 done, 1 failed, 1 without a face", st)
	}
	if !strings.Contains(log.String(), "bad.png") {
		t.Errorf("log does not name the bad file:\n%s", log.String())
	}
	st, err = Run(context.Background(), []string{filepath.Join(dir, "real")}, o)
	if err != nil || st.Skipped != 2 {
		t.Errorf("second run: %+v, %v", st, err)
	}
}
