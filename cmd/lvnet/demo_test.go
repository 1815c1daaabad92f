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

// TestDemo runs lvnet demo on the FaceForensics++ example frame twice:
// without a default model nor training data (an untrained network, said
// loudly, not installed), then with a tiny training folder (a model trained
// and installed as the default). Both make the self-blended forgery and
// the heatmaps of the photo and the forgery.
func TestDemo(t *testing.T) {
	needFaceModels(t)
	photo := shared.Path(t, "data", "ffpp-examples", "ex_original.png")
	def := filepath.Join(t.TempDir(), "models", "default.safetensors")
	t.Setenv(detect.ModelEnv, def)
	t.Setenv(shared.Env, filepath.Join(t.TempDir(), "no-shared")) // no training data

	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := demoMain(context.Background(), []string{"--out", out, photo}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "UNTRAINED") || !strings.Contains(stdout.String(), "UNTRAINED") {
		t.Errorf("no loud warning about the untrained network:\n%s\n%s", stderr.String(), stdout.String())
	}
	if _, err := os.Stat(def); err == nil {
		t.Error("an untrained network was installed as the default model")
	}
	forged := filepath.Join(out, "ex_original-selfblend.png")
	checkForgery(t, photo, forged, filepath.Join(out, "ex_original-selfblend-mask.png"))
	for _, name := range []string{"ex_original.heatmap.png", "ex_original-selfblend.heatmap.png"} {
		if _, err := os.Stat(filepath.Join(out, "heatmaps", name)); err != nil || !strings.Contains(stdout.String(), name) {
			t.Errorf("heatmap %s not written or not listed: %v\n%s", name, err, stdout.String())
		}
	}
	lines := strings.Split(stdout.String(), "\n")
	found := 0
	for _, l := range lines {
		if strings.HasPrefix(l, photo+" ") || strings.HasPrefix(l, forged+" ") {
			found++
		}
	}
	if found != 2 {
		t.Errorf("the detect table lacks the photo or the forgery:\n%s", stdout.String())
	}

	// With training data: a model is trained and installed as the default.
	data := t.TempDir()
	for _, class := range []string{"real", "fake"} {
		os.MkdirAll(filepath.Join(data, class), 0o755)
		for i := range 8 {
			var b bytes.Buffer
			png.Encode(&b, noiseRGBA(96, 96, uint64(i)+map[string]uint64{"real": 0, "fake": 100}[class]))
			os.WriteFile(filepath.Join(data, class, string(rune('a'+i))+".png"), b.Bytes(), 0o644)
		}
	}
	stdout.Reset()
	stderr.Reset()
	out2 := t.TempDir()
	if err := demoMain(context.Background(), []string{"--out", out2, "--data", data, "--epochs", "1", photo}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(def); err != nil || !strings.Contains(stdout.String(), "installed") || !strings.Contains(stdout.String(), "trained 1 epoch") {
		t.Errorf("default model not trained and installed (%v):\n%s", err, stdout.String())
	}
	if strings.Contains(stderr.String(), "UNTRAINED") {
		t.Errorf("warning about an untrained network with a trained one:\n%s", stderr.String())
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
