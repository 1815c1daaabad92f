package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/sbi"
	"github.com/lvnet-go/lvnet/train"
	"github.com/lvnet-go/lvnet/viz"
)

// runDemo is the main job of `make demo` (which first fetches two photos
// from Debian packages): make sure there is a default model, make a
// self-blended forgery of the first photo, and run lvnet detect on the
// photos and the forgery, writing heatmaps.
func runDemo(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return demoMain(ctx, args, os.Stdout, os.Stderr)
}

// Defaults of lvnet demo.
const (
	demoEpochs = 4 // of the smoke preset over the 650 FaceForensics++ crops: about 2 minutes on 2 cores
	demoSeed   = 7
)

func demoMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "[--out DIR] PHOTO... (make demo fetches astronaut.png and grace_hopper_512x512.jpg)")
	out := fs.String("out", filepath.Join("build", "demo"), "folder for the forgery, the heatmaps and a model trained for the demo")
	modelPath := fs.String("model", "", "LVNet checkpoint (default: the default model; made when absent)")
	dataDir := fs.String("data", "", "training data for the default model when there is none (default: ../shared/data/ffpp-crops when present)")
	epochs := fs.Int("epochs", demoEpochs, "epochs of the smoke preset when the default model is trained")
	seed := fs.Uint64("seed", demoSeed, "random seed of the self-blended forgery")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	photos := fs.Args()
	switch {
	case len(photos) == 0:
		return usagef("no photos: name one or more (make demo fetches two from Debian packages)")
	case *epochs < 1:
		return usagef("--epochs %d: want at least 1", *epochs)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", a...) }

	ckpt := *modelPath
	if ckpt == "" {
		var err error
		if ckpt, err = demoModel(*out, *dataDir, *epochs, say, stderr); err != nil {
			return err
		}
	}
	if meta, err := checkpoint.ReadMeta(ckpt); err == nil {
		say("model %s: %s", ckpt, describeModel(meta))
	}

	say("self-blended forgery of %s (SBI: the face blended with a slightly changed copy of itself)", photos[0])
	forged, mask, err := demoForgery(photos[0], *out, *seed)
	if err != nil {
		return err
	}
	say("wrote %s (its blend mask: %s)", forged, mask)

	heat := filepath.Join(*out, "heatmaps")
	inputs := append(append([]string(nil), photos...), forged)
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

// demoModel returns the default model, making it when absent: a smoke
// model trained on the shared FaceForensics++ crops (installed as the
// default), or, without training data, an untrained network used for this
// run only, with a loud warning.
func demoModel(out, dataDir string, epochs int, say func(string, ...any), stderr io.Writer) (string, error) {
	def := detect.DefaultModelPath()
	if _, err := os.Stat(def); err == nil {
		say("using the default model %s", def)
		return def, nil
	}
	if dataDir == "" {
		if sh, ok := shared.Find(); ok {
			if st, err := os.Stat(filepath.Join(sh, "data", "ffpp-crops")); err == nil && st.IsDir() {
				dataDir = filepath.Join(sh, "data", "ffpp-crops")
			}
		}
	}
	runDir := filepath.Join(out, "model")
	if dataDir == "" {
		fmt.Fprintf(stderr, "\n"+
			"WARNING: there is no default model (%s) and no training data (../shared/data/ffpp-crops, or --data).\n"+
			"WARNING: this demo runs an UNTRAINED network: its scores and heatmaps mean nothing.\n"+
			"WARNING: train a model with `lvnet train --data DIR --out RUN` and copy RUN/best.safetensors there,\n"+
			"WARNING: or convert the authors' checkpoint with `lvnet import`.\n\n", def)
		cfg, _ := train.Preset("smoke")
		m, err := model.New(cfg.Model, demoSeed)
		if err != nil {
			return "", err
		}
		defer m.Free()
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			return "", fmt.Errorf("demo: %w", err)
		}
		p := filepath.Join(runDir, "untrained.safetensors")
		meta := checkpoint.Meta{Provenance: checkpoint.Provenance{Source: checkpoint.SourceInit, Seed: demoSeed,
			Note: "lvnet demo without training data: not a detector"}}
		if err := checkpoint.Save(p, m, meta); err != nil {
			return "", err
		}
		return p, nil
	}
	best := filepath.Join(runDir, "best.safetensors")
	if _, err := os.Stat(best); err != nil {
		say("no default model yet: training a small one (preset smoke, %s) on %s into %s; a few minutes", plural(epochs, "epoch"), dataDir, runDir)
		if err := os.RemoveAll(runDir); err != nil { // an interrupted earlier run
			return "", fmt.Errorf("demo: %w", err)
		}
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			return "", fmt.Errorf("demo: %w", err)
		}
		cfgFile := filepath.Join(out, "model.yaml")
		yaml := fmt.Sprintf("# lvnet demo: the smoke preset on every crop\npreset: smoke\nlimit: 0\nepochs: %d\n", epochs)
		if err := os.WriteFile(cfgFile, []byte(yaml), 0o644); err != nil {
			return "", fmt.Errorf("demo: %w", err)
		}
		if err := runTrain([]string{"--config", cfgFile, "--data", dataDir, "--out", runDir}); err != nil {
			return "", fmt.Errorf("demo: train the default model: %w", err)
		}
		say("note: a model this small, trained for minutes on a few hundred crops, shows the pipeline at work; " +
			"it is not an accurate detector (train with the paper preset, or import the authors' weights, for that)")
	}
	if err := installFile(best, def); err != nil {
		return "", err
	}
	say("installed %s as the default model %s", best, def)
	return def, nil
}

// installFile copies src to dst atomically (a temporary file in dst's
// folder renamed over dst), creating the folder.
func installFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("install %s: %w", dst, err)
	}
	return nil
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
