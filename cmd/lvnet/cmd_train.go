package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/train"
)

func trainMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "train", "--data SPEC --out DIR")
	preset := fs.String("preset", "paper", "hyperparameter preset: "+strings.Join(train.PresetNames(), ", "))
	cfgPath := fs.String("config", "", "YAML/JSON file of hyperparameters over the preset")
	dataSpec := fs.String("data", "", "training data: a folder (real/ fake/ masks/), ffpp:ROOT, dfb:FILE.json, index:DIR, sbi:DIR; join with +")
	val := fs.String("val", "", "validation data (same forms); validation AUC is computed after each epoch")
	out := fs.String("out", "", "run directory: last/best checkpoints, metrics.jsonl, config.yaml")
	resume := fs.Bool("resume", false, "continue the run in --out where it stopped")
	engine := addEngineFlags(fs)
	epochs := fs.Int("epochs", 0, "override the number of epochs")
	batch := fs.Int("batch-size", 0, "override the batch size")
	printCfg := fs.Bool("print-config", false, "print the effective configuration and exit")
	maxSteps := fs.Int("max-steps", 0, "stop (resumable) after this many steps in this call")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := train.Preset(*preset)
	if err != nil {
		return usagef("%v", err)
	}
	if *cfgPath != "" {
		if cfg, err = train.LoadConfig(*cfgPath, cfg); err != nil {
			return err
		}
	}
	if *epochs > 0 {
		cfg.Epochs = *epochs
	}
	if *batch > 0 {
		cfg.BatchSize = *batch
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *printCfg {
		fmt.Fprint(stdout, cfg.YAML())
		return nil
	}
	if *dataSpec == "" || *out == "" {
		return usagef("--data and --out are required")
	}
	dev, err := engine.apply()
	if err != nil {
		return err
	}
	torch.KeepFreedMemory()
	gens, closeGens, err := sbiGenerators(*dataSpec, *val) // sbi:DIR parts
	if err != nil {
		return err
	}
	defer closeGens()
	res, err := train.Run(ctx, train.Options{
		Config: cfg, Train: *dataSpec, Val: *val, Out: *out, Resume: *resume, Device: dev,
		Log: stderr, TTY: isTerminal(stderr), Save: saveCheckpoint, Generators: gens, MaxSteps: *maxSteps,
	})
	if err != nil {
		return err
	}
	if !res.Interrupted {
		fmt.Fprintf(stderr, "train: done, %d epochs, %d steps; checkpoints in %s\n", res.Epoch, res.Step, *out)
	}
	return nil
}

// saveCheckpoint adapts checkpoint.Save to the training loop.
func saveCheckpoint(path string, m *model.LVNet, meta map[string]any) error {
	cm := checkpoint.Meta{Provenance: checkpoint.Provenance{Source: checkpoint.SourceTrained}}
	if v, ok := meta["epoch"].(int); ok {
		cm.Epoch = int64(v)
	}
	if v, ok := meta["step"].(int); ok {
		cm.Step = int64(v)
	}
	if v, ok := meta["metrics"].(map[string]any); ok {
		cm.Metrics = v
	}
	if v, ok := meta["train_data"].(string); ok {
		cm.Provenance.Note = fmt.Sprintf("trained on %s (preset %v)", v, meta["preset"])
	}
	return checkpoint.Save(path, m, cm)
}
