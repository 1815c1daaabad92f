package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
)

// TestDemo runs lvnet demo with the shipped model on a FaceForensics++
// frame: without ../shared's examples, then with them. Both make the
// self-blended forgery and the heatmaps, and name the calibrated model.
func TestDemo(t *testing.T) {
	needFaceModels(t)
	photo := shared.Path(t, "data", "ffpp-examples", "ex_original.png")
	examples := filepath.Dir(photo)
	t.Setenv(detect.ModelEnv, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the shipped model is written here
	t.Setenv(shared.Env, filepath.Join(t.TempDir(), "no-shared"))

	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := demoMain(context.Background(), []string{"--out", out, photo}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "calibrated (temperature") || !strings.Contains(stdout.String(), "lvnet-default-") {
		t.Errorf("the demo does not name the shipped, calibrated model:\n%s", stdout.String())
	}
	forged := filepath.Join(out, "ex_original-selfblend.png")
	checkForgery(t, photo, forged, filepath.Join(out, "ex_original-selfblend-mask.png"))
	for _, name := range []string{"ex_original.heatmap.png", "ex_original-selfblend.heatmap.png"} {
		if _, err := os.Stat(filepath.Join(out, "heatmaps", name)); err != nil || !strings.Contains(stdout.String(), name) {
			t.Errorf("heatmap %s not written or not listed: %v\n%s", name, err, stdout.String())
		}
	}
	found := 0
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(l, photo+" ") || strings.HasPrefix(l, forged+" ") {
			found++
		}
	}
	if found != 2 {
		t.Errorf("the detect table lacks the photo or the forgery:\n%s", stdout.String())
	}

	// With the example frames: both are analysed too.
	stdout.Reset()
	stderr.Reset()
	out2 := t.TempDir()
	if err := demoMain(context.Background(), []string{"--out", out2, "--examples", examples, photo}, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out2, "heatmaps", "ex_deepfakes.heatmap.png")); err != nil {
		t.Errorf("no heatmap of the Deepfakes example: %v\n%s", err, stdout.String())
	}
}

// checkForgery checks that the forgery differs from the photo, and only
// where its mask is above zero.
func checkForgery(t *testing.T, photo, forged, mask string) {
	t.Helper()
	a, err := media.DecodeImage(photo)
	if err != nil {
		t.Fatal(err)
	}
	b, err := media.DecodeImage(forged)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(mask)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mi, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mi.(*image.Gray)
	if !ok || a.Rect != b.Rect || m.Rect != a.Rect {
		t.Fatalf("forgery %v, mask %T %v, photo %v", b.Rect, mi, mi.Bounds(), a.Rect)
	}
	changed := 0
	for y := 0; y < a.Rect.Dy(); y++ {
		for x := 0; x < a.Rect.Dx(); x++ {
			i := a.PixOffset(x, y)
			if !bytes.Equal(a.Pix[i:i+3], b.Pix[i:i+3]) {
				if m.GrayAt(x, y).Y == 0 {
					t.Fatalf("forgery differs at (%d,%d), outside its mask", x, y)
				}
				changed++
			}
		}
	}
	if changed < 500 {
		t.Errorf("forgery changes only %d pixels", changed)
	}
}

// noiseRGBA is a w x h picture of colour noise.
func noiseRGBA(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 3))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	return img
}
