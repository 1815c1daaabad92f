package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/train"
)

// calibrateMain fits the temperature and the decision threshold of a model on
// validation data and writes a copy of the checkpoint that carries them.
func calibrateMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "calibrate", "--model M.safetensors --val SPEC --out CALIBRATED.safetensors")
	modelPath := fs.String("model", "", "checkpoint to calibrate (.safetensors)")
	val := fs.String("val", "", "validation data (any data spec; both real and fake faces)")
	out := fs.String("out", "", "calibrated checkpoint to write (the weights of --model with the calibration in its metadata)")
	keep := fs.Float64("keep-real", 0.95, "threshold rule: the lowest threshold that calls at least this fraction of the validation reals real")
	dataNote := fs.String("data-note", "", "provenance: the training data, for the model card")
	command := fs.String("command", "", "provenance: the command that trained the model")
	commit := fs.String("commit", "", "provenance: the commit of the code the model was trained with")
	batch := fs.Int("batch-size", 32, "images per forward pass")
	engine := addEngineFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *modelPath == "" || *val == "" || *out == "":
		return usagef("--model, --val and --out are required")
	case !(*keep > 0 && *keep <= 1):
		return usagef("--keep-real %v: want a fraction in (0, 1]", *keep)
	case *batch < 1:
		return usagef("--batch-size must be positive")
	}
	dev, err := engine.apply()
	if err != nil {
		return err
	}
	torch.KeepFreedMemory()
	m, meta, err := checkpoint.Load(*modelPath, checkpoint.LoadOptions{Device: dev})
	if err != nil {
		return err
	}
	defer m.Free()
	gens, closeGens, err := sbiGenerators(*val) // sbi:DIR parts (self-blended faces)
	if err != nil {
		return err
	}
	defer closeGens()
	ds, err := data.Open(*val, data.Options{ImageSize: m.Config.ImageSize, Split: "val", Every: 1, Region: "none", Warn: stderr, Generators: gens})
	if err != nil {
		return err
	}
	nr, nf := ds.Counts()
	fmt.Fprintf(stderr, "calibrate: %s on %d real + %d fake images\n", *modelPath, nr, nf)
	bar := progress.NewTo(stderr, isTerminal(stderr), "calibrate", int64(ds.Len()), "img")
	recs, err := train.Evaluate(ctx, m, data.NewLoader(ds, data.LoaderOptions{BatchSize: *batch}), dev, bar)
	bar.Finish()
	if err != nil {
		return err
	}
	z := make([]float64, len(recs))
	labels := make([]int, len(recs))
	for i, r := range recs {
		z[i], labels[i] = metrics.Logit(r.PFake), r.Label
	}
	cal, err := metrics.FitTemperature(z, labels)
	if err != nil {
		return fmt.Errorf("calibrate %s: %w", *val, err)
	}
	metrics.ApplyTemperature(recs, cal.Temperature)
	scores := make([]float64, len(recs))
	for i, r := range recs {
		scores[i] = r.PFake
	}
	thr, err := metrics.ThresholdAtRealRate(scores, labels, *keep)
	if err != nil {
		return fmt.Errorf("calibrate %s: %w", *val, err)
	}
	balanced, err := metrics.ThresholdBalanced(scores, labels)
	if err != nil {
		return fmt.Errorf("calibrate %s: %w", *val, err)
	}
	sum, err := metrics.ComputeAt(recs, thr)
	if err != nil {
		return fmt.Errorf("calibrate %s: %w", *val, err)
	}
	meta.Calibration = &checkpoint.Calibration{
		Temperature: cal.Temperature, Threshold: thr,
		ThresholdRule: fmt.Sprintf("reals-%g: at least %g%% of the validation reals below it", *keep, 100**keep),
		Validation:    *val, LogLossRaw: cal.LogLossRaw, LogLoss: cal.LogLoss,
	}
	if meta.Metrics == nil {
		meta.Metrics = map[string]any{}
	}
	meta.Metrics["calibration_set"] = sum
	meta.Metrics["balanced_threshold"] = balanced
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&meta.Provenance.Data, *dataNote}, {&meta.Provenance.Command, *command}, {&meta.Provenance.Commit, *commit},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	if err := checkpoint.Save(*out, m, meta); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "calibrate: temperature %.4f (log loss %.4f -> %.4f%s), threshold %.4f (%s; balanced-accuracy threshold %.4f); wrote %s\n",
		cal.Temperature, cal.LogLossRaw, cal.LogLoss, map[bool]string{true: "", false: ", kept at 1"}[cal.Improved],
		thr, meta.Calibration.ThresholdRule, balanced, *out)
	return json.NewEncoder(stdout).Encode(map[string]any{"calibration": meta.Calibration, "summary": sum})
}
