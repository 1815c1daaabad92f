package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/sbi"
	"github.com/lvnet-go/lvnet/viz"
)

// demoSeed seeds the self-blended forgeries of lvnet demo.
const demoSeed = 7

// demoMain is the main job of `make demo` (which first fetches two photos
// from Debian packages): the shipped detector on the photos, on a
// self-blended forgery of each, and on the FaceForensics++ example frames of
// ../shared when present, with heatmaps.
func demoMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "demo", "[--out DIR] PHOTO... (make demo fetches astronaut.png and grace_hopper_512x512.jpg)")
	out := fs.String("out", filepath.Join("build", "demo"), "folder for the forgeries and the heatmaps")
	modelPath := fs.String("model", "", "LVNet checkpoint (default: $"+detect.ModelEnv+", else the shipped model)")
	seed := fs.Uint64("seed", demoSeed, "random seed of the self-blended forgeries")
	examples := fs.String("examples", "", "folder of FaceForensics++ example frames (ex_original.png, ex_deepfakes.png; default: ../shared/data/ffpp-examples when present)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	photos := fs.Args()
	if len(photos) == 0 {
		return usagef("no photos: name one or more (make demo fetches two from Debian packages)")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", a...) }

	ckpt, err := modelFile(fs, *modelPath)
	if err != nil {
		return err
	}
	meta, err := checkpoint.ReadMeta(ckpt)
	if err != nil {
		return err
	}
	say("model %s: %s", ckpt, describeModel(meta))

	inputs := append([]string(nil), photos...)
	for _, photo := range photos {
		forged, mask, err := demoForgery(photo, *out, *seed)
		if err != nil {
			return err
		}
		say("self-blended forgery of %s (the face blended with a slightly changed copy of itself): %s, mask %s", photo, forged, mask)
		inputs = append(inputs, forged)
	}
	exDir := *examples
	if exDir == "" {
		if sh, ok := shared.Find(); ok {
			exDir = filepath.Join(sh, "data", "ffpp-examples")
		}
	}
	for _, name := range []string{"ex_original.png", "ex_deepfakes.png"} {
		if p := filepath.Join(exDir, name); exDir != "" && fileExists(p) && !sameFileIn(p, photos) {
			inputs = append(inputs, p)
		}
	}
	if len(inputs) > 2*len(photos) { // the examples were added
		say("FaceForensics++ example frames (a real frame and its Deepfakes version): %s", strings.Join(inputs[2*len(photos):], ", "))
	}

	heat := filepath.Join(*out, "heatmaps")
	say("lvnet detect --model %s --heatmaps %s %s", ckpt, heat, strings.Join(inputs, " "))
	derr := detectMain(ctx, append([]string{"--model", ckpt, "--heatmaps", heat, "--quiet"}, inputs...), strings.NewReader(""), stdout, stderr)
	var pe *partialError
	if derr != nil && !errors.As(derr, &pe) {
		return derr
	}
	ents, err := os.ReadDir(heat)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	say("heatmaps (patch forgery probabilities over each face, colour scale in the corner):")
	for _, e := range ents {
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".png") {
			fmt.Fprintf(stdout, "    %s (%d KiB)\n", filepath.Join(heat, e.Name()), (info.Size()+1023)/1024)
		}
	}
	return derr
}

// sameFileIn reports whether p is one of the files named in list.
func sameFileIn(p string, list []string) bool {
	a, err := os.Stat(p)
	if err != nil {
		return false
	}
	for _, q := range list {
		if b, err := os.Stat(q); err == nil && os.SameFile(a, b) {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// describeModel says where a checkpoint's weights come from.
func describeModel(meta checkpoint.Meta) string {
	c := meta.Config
	s := fmt.Sprintf("%dx%d input, width %g", c.ImageSize, c.ImageSize, c.Width)
	p := meta.Provenance
	switch p.Source {
	case checkpoint.SourceTrained:
		s += ", trained " + plural(int(meta.Epoch), "epoch")
		if p.Note != "" {
			s += " (" + p.Note + ")"
		}
		if auc, ok := meta.Metrics["val_auc"].(float64); ok {
			s += fmt.Sprintf(", validation AUC %.3f", auc)
		}
		if c := meta.Calibration; c != nil {
			s += fmt.Sprintf(", calibrated (temperature %.3g, threshold %.3g)", c.Temperature, c.Threshold)
		}
	case checkpoint.SourceInit:
		s += ", UNTRAINED (random initial weights): its scores mean nothing"
	default:
		s += ", weights: " + p.Source
		if p.Note != "" {
			s += " (" + p.Note + ")"
		}
	}
	return s
}

// demoForgery makes a self-blended forgery of the largest face of a photo:
// the whole photo with the face blended with a changed copy of itself
// through a mask drawn from its landmarks (sbi.Blend at full blend ratio).
// It writes OUT/<name>-selfblend.png and its mask, and returns their paths.
func demoForgery(photo, out string, seed uint64) (forged, mask string, err error) {
	img, err := media.DecodeImage(photo)
	if err != nil {
		return "", "", err
	}
	det, err := face.NewDetector(face.DefaultModelDir(), face.Options{})
	if err != nil {
		return "", "", fmt.Errorf("load the face detector (install it with scripts/fetch-face-models.sh): %w", err)
	}
	defer det.Close()
	faces, err := det.Detect(img)
	if err != nil {
		return "", "", fmt.Errorf("%s: find faces: %w", photo, err)
	}
	if len(faces) == 0 {
		return "", "", fmt.Errorf("%s: no face found to forge", photo)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	blend, m, err := sbi.Blend(img, faces[0].Landmarks, rng, sbi.Options{BlendRatios: []float64{1}})
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", photo, err)
	}
	stem := strings.TrimSuffix(filepath.Base(photo), filepath.Ext(photo))
	forged = filepath.Join(out, stem+"-selfblend.png")
	mask = filepath.Join(out, stem+"-selfblend-mask.png")
	if err := viz.WritePNG(forged, blend); err != nil {
		return "", "", err
	}
	if err := viz.WritePNG(mask, m); err != nil {
		return "", "", err
	}
	return forged, mask, nil
}
