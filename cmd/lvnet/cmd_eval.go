package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // decoders for report pictures
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/report"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/train"
)

func evalMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "eval", "--model M.safetensors --data SPEC")
	modelPath := fs.String("model", "", "checkpoint to evaluate (.safetensors; default: $"+detect.ModelEnv+", else the shipped model)")
	raw := fs.Bool("raw", false, "ignore the model's calibration (temperature 1, threshold 0.5)")
	dataSpec := fs.String("data", "", "test data: a folder (real/ fake/ masks/), ffpp:ROOT, dfb:FILE.json, index:DIR, dfdc:DIR, sbi:DIR; join with +")
	split := fs.String("split", "test", "split of ffpp/dfb datasets")
	asJSON := fs.Bool("json", false, "print the metrics as one JSON object")
	reportDir := fs.String("report", "", "write ROC/PR/training plots and an HTML page with the worst errors here")
	batch := fs.Int("batch-size", 16, "images per forward pass")
	engine := addEngineFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dataSpec == "" {
		return usagef("--data is required")
	}
	if *batch < 1 {
		return usagef("--batch-size must be positive")
	}
	dev, err := engine.apply()
	if err != nil {
		return err
	}
	torch.KeepFreedMemory()
	ckpt, err := modelFile(fs, *modelPath)
	if err != nil {
		return err
	}
	*modelPath = ckpt
	m, meta, err := checkpoint.Load(*modelPath, checkpoint.LoadOptions{Device: dev})
	if err != nil {
		return err
	}
	defer m.Free()
	gens, closeGens, err := sbiGenerators(*dataSpec) // sbi:DIR parts (self-blended faces)
	if err != nil {
		return err
	}
	defer closeGens()
	ds, err := data.Open(*dataSpec, data.Options{ImageSize: m.Config.ImageSize, Split: *split, Every: 1, Region: "none", Warn: stderr, Generators: gens})
	if err != nil {
		return err
	}
	nr, nf := ds.Counts()
	fmt.Fprintf(stderr, "eval: %s on %d real + %d fake images\n", *modelPath, nr, nf)
	l := data.NewLoader(ds, data.LoaderOptions{BatchSize: *batch})
	bar := progress.NewTo(stderr, isTerminal(stderr), "eval", int64(ds.Len()), "img")
	recs, err := train.Evaluate(ctx, m, l, dev, bar)
	bar.Finish()
	if err != nil {
		return err
	}
	if n := ds.Skipped(); n > 0 {
		fmt.Fprintf(stderr, "eval: %d unreadable file(s) skipped\n", n)
	}
	thr := metrics.Threshold
	if !*raw {
		metrics.ApplyTemperature(recs, meta.TemperatureOr1())
		thr = meta.ThresholdOr(metrics.Threshold)
	}
	sum, err := metrics.ComputeAt(recs, thr)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if *reportDir != "" {
		panels := map[string]int{}
		for _, s := range ds.Samples() {
			panels[s.Path] = s.Panel
		}
		trainLog := filepath.Join(filepath.Dir(*modelPath), "metrics.jsonl")
		if _, err := os.Stat(trainLog); err != nil {
			trainLog = ""
		}
		err := report.Write(*reportDir, sum, recs, report.Options{
			Subtitle:  fmt.Sprintf("model %s (%s) · data %s", filepath.Base(*modelPath), meta.Provenance.Source, *dataSpec),
			LoadImage: func(path string) (image.Image, error) { return loadFace(path, panels[path]) },
			TrainLog:  trainLog,
			Logf:      func(f string, a ...any) { fmt.Fprintf(stderr, "report: "+f+"\n", a...) },
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "eval: report written to %s\n", filepath.Join(*reportDir, report.IndexFile))
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(sum)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, r := range sum.Rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Key, r.Value, r.Name)
	}
	return tw.Flush()
}

// loadFace reads the face image of a dataset sample: the whole image, or the
// first panel of the authors' face|mask|extra frames.
func loadFace(path string, panels int) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if panels < 2 {
		return img, nil
	}
	b := img.Bounds()
	w := b.Dx() / panels
	out := image.NewRGBA(image.Rect(0, 0, w, b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out, nil
}
