package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
)

// FuzzAnalyzeInput feeds arbitrary bytes to the pipeline as an upload
// (Input.Data, as the server passes them), through decoding, face
// detection, cropping, scoring and the heatmap: it must never panic, and
// must return either a result that encodes as JSON or an *InputError,
// never leaving a temporary file behind. The seeds include a photo with a
// face, a video and the bad inputs of the issue. It uses the real face
// detector when the face models are installed, else a fake one that finds
// a face in the middle of every picture.
func FuzzAnalyzeInput(f *testing.F) {
	var det FaceDetector = &fakeDetector{find: centreFace}
	if dir := face.DefaultModelDir(); fileExists(filepath.Join(dir, "ssd_mobilenetv1_model-weights_manifest.json")) {
		d, err := face.NewDetector(dir, face.Options{NoLandmarks: true})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { d.Close() })
		det = d
	}
	var photo bytes.Buffer
	png.Encode(&photo, noiseImage(48, 40, 5))
	seeds := []struct {
		name string
		data []byte
	}{
		{"photo.png", photo.Bytes()},
		{"cut.png", photo.Bytes()[:photo.Len()/2]},
		{"empty.jpg", nil},
		{"notes.jpg", []byte("not a picture\n")},
		{"huge.png", pngHeader(50000, 50000)},
		{"zero.png", pngHeader(0, 7)},
		{"clip.mp4", nil},
		{"clip.mp4", []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")},
		{"a.gif", []byte("GIF89a\x01\x00\x01\x00")},
		{"a.jpg", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'}},
	}
	if ex, ok := sharedFile("data", "ffpp-examples", "ex_original.png"); ok {
		if b, err := os.ReadFile(ex); err == nil {
			seeds = append(seeds, struct {
				name string
				data []byte
			}{"face.png", b})
		}
	}
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		clip := testVideo(f, f.TempDir(), "seed.mkv", 64, 48, 6, 4)
		if b, err := os.ReadFile(clip); err == nil {
			seeds = append(seeds, struct {
				name string
				data []byte
			}{"seed.mkv", b}, struct {
				name string
				data []byte
			}{"cut.mkv", b[:len(b)*2/3]})
		}
	}
	for _, s := range seeds {
		f.Add(s.name, s.data)
	}
	m := testModel(f)
	p, err := NewPipeline(m, PipelineOptions{Faces: det, Limits: media.Limits{MaxPixels: 4 << 20, MaxBytes: 8 << 20, MaxFrames: 50}})
	if err != nil {
		f.Fatal(err)
	}
	// Uploaded videos are spooled into $TMPDIR: give each fuzzing process
	// its own, so that the check for files left behind sees only its own.
	tmp := f.TempDir()
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", tmp)
	f.Cleanup(func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
	})
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		r, err := p.Analyze(t.Context(), Input{Name: name, Data: bytes.NewReader(data), Size: int64(len(data))},
			Options{InlinePNG: true, MaxFrames: 2})
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || r != nil {
				t.Fatalf("%d bytes named %q: %v (%T), want an InputError", len(data), name, err, err)
			}
			return
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
		if r.Label != LabelNone && (r.PFake < 0 || r.PFake > 1 || len(r.Faces) == 0) {
			t.Fatalf("result %+v", r)
		}
		if left, _ := filepath.Glob(filepath.Join(tmp, "lvnet-input-*")); len(left) > 0 {
			t.Fatalf("temporary files left: %v", left)
		}
	})
}

// centreFace is a face box in the middle half of a picture.
func centreFace(img *image.RGBA) []face.Face {
	b := img.Rect
	w, h := float32(b.Dx()), float32(b.Dy())
	return []face.Face{{Box: face.Box{X0: w / 4, Y0: h / 4, X1: 3 * w / 4, Y1: 3 * h / 4}, Score: 0.8}}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// sharedFile returns a file of ../shared when present.
func sharedFile(elem ...string) (string, bool) {
	dir, ok := shared.Find()
	if !ok {
		return "", false
	}
	p := filepath.Join(append([]string{dir}, elem...)...)
	return p, fileExists(p)
}
