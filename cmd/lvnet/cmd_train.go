package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/dist"
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
	nproc := fs.Int("nproc-per-node", 0, "start N data-parallel workers on this machine (as torchrun); workers read RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT")
	backend := fs.String("backend", "", "data-parallel backend: gloo (CPU) or nccl (CUDA); default by --device")
	distTimeout := fs.Duration("dist-timeout", 5*time.Minute, "data-parallel: a rank that died or hangs stops the others after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *nproc > 0 {
		if os.Getenv("WORLD_SIZE") != "" {
			return usagef("--nproc-per-node starts workers itself; it cannot run inside a worker (WORLD_SIZE is set)")
		}
		return dist.Launch(ctx, dist.LaunchOptions{N: *nproc, Args: append([]string{"train"}, withoutFlag(args, "nproc-per-node")...),
			Stdout: stdout, Stderr: stderr})
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
	env, err := dist.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	var job *dist.Job
	if env.Distributed() {
		if job, err = joinJob(env, &dev, *backend, *distTimeout); err != nil {
			return err
		}
		defer job.Close()
	}
	torch.KeepFreedMemory()
	gens, closeGens, err := sbiGenerators(*dataSpec, *val) // sbi:DIR parts
	if err != nil {
		return err
	}
	defer closeGens()
	res, err := train.Run(ctx, train.Options{
		Config: cfg, Train: *dataSpec, Val: *val, Out: *out, Resume: *resume, Device: dev,
		Log: stderr, TTY: isTerminal(stderr), Save: saveCheckpoint, Generators: gens, MaxSteps: *maxSteps, Dist: job,
	})
	if err != nil {
		return err
	}
	if !res.Interrupted && (job == nil || job.Rank == 0) {
		fmt.Fprintf(stderr, "train: done, %d epochs, %d steps; checkpoints in %s\n", res.Epoch, res.Step, *out)
	}
	return nil
}

// joinJob joins the data-parallel job described by env: on CUDA each local
// rank takes its own GPU (cuda:LOCAL_RANK unless --device names one) and
// NCCL, on the CPU Gloo.
func joinJob(env dist.Env, dev *torch.Device, backend string, timeout time.Duration) (*dist.Job, error) {
	b := torch.Gloo
	switch backend {
	case "":
		if dev.Type == torch.DeviceCUDA {
			b = torch.NCCL
		}
	case "gloo":
	case "nccl":
		b = torch.NCCL
	default:
		return nil, usagef("--backend %q: want gloo or nccl", backend)
	}
	if dev.Type == torch.DeviceCUDA && dev.Index == 0 {
		*dev = torch.CUDA(env.LocalRank)
	}
	return dist.Join(env, dist.Options{Backend: b, Timeout: timeout, Device: *dev})
}

// withoutFlag returns args without the flag name and its value (forms
// -name V, --name V, --name=V).
func withoutFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		switch {
		case a == name && args[i] != a:
			i++ // its value
		case strings.HasPrefix(a, name+"=") && args[i] != a:
		default:
			out = append(out, args[i])
		}
	}
	return out
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
