package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/serve"
	"github.com/lvnet-go/lvnet/torch"
)

// runServe serves the detector over HTTP until SIGINT or SIGTERM.
func runServe(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveMain(ctx, args, os.Stderr, nil)
}

// serveMain parses the flags, loads the model and serves until ctx ends;
// ready (when not nil) is told the address once the server listens.
func serveMain(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	fs := newFlags("serve", "--model M.safetensors [--addr 127.0.0.1:8080]")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	modelPath := fs.String("model", "", "LVNet checkpoint (default: $"+detect.ModelEnv+", else "+detect.DefaultModelName+" in the model folder, which make demo creates)")
	aligned := fs.Bool("aligned", false, "treat uploads as aligned face crops unless a request says aligned=0")
	faceModels := fs.String("face-models", face.DefaultModelDir(), "folder of the face detector's models (without them only aligned face crops can be analysed)")
	threshold := fs.Float64("threshold", detect.DefaultThreshold, "default label threshold on p_fake, in (0, 1]")
	maxUpload := fs.Int64("max-upload", serve.DefaultMaxUploadBytes>>20, "largest upload in MiB")
	concurrency := fs.Int("concurrency", 0, "analyses run at once (default 1 on CPU, 2 on CUDA)")
	queue := fs.Int("queue", serve.DefaultQueueLen, "requests waiting for an analysis slot before 503 (0: none)")
	queueWait := fs.Duration("queue-wait", serve.DefaultQueueWait, "longest wait in the queue before 503")
	timeout := fs.Duration("timeout", serve.DefaultRequestTimeout, "longest request: upload, queue and analysis (then 504)")
	shutdown := fs.Duration("shutdown-timeout", serve.DefaultShutdownTimeout, "on SIGINT/SIGTERM, how long running requests may take to finish")
	maxFrames := fs.Int("max-frames", 0, "videos: most frames analysed per request (0: no limit)")
	batch := fs.Int("batch", 0, "faces per forward pass (default: 4 on CPUs, 8 on GPUs; larger batches are faster per face and take more memory)")
	workers := fs.Int("workers", 0, "goroutines decoding inputs while the model runs (default: CPUs, at most 4)")
	infer := addInferenceFlags(fs)
	threads := fs.Int("threads", 0, "intra-op threads (default: all CPUs, or $"+torch.ThreadsEnv+")")
	quiet := fs.Bool("quiet", false, "log warnings and errors only, not every request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dev, dt, err := infer.parse()
	if err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected arguments %q: lvnet serve takes flags only", fs.Args())
	case !(*threshold > 0 && *threshold <= 1):
		return usagef("--threshold %v: want a value in (0, 1]", *threshold)
	case *maxUpload < 1 || *maxUpload > 1<<20:
		return usagef("--max-upload %d: want 1 to %d MiB", *maxUpload, 1<<20)
	case *concurrency < 0:
		return usagef("--concurrency %d: want 0 (automatic) or more", *concurrency)
	case *queue < 0:
		return usagef("--queue %d: want 0 or more", *queue)
	case *queueWait <= 0 || *timeout <= 0 || *shutdown <= 0:
		return usagef("--queue-wait, --timeout and --shutdown-timeout must be positive")
	case *maxFrames < 0:
		return usagef("--max-frames %d: want 0 (no limit) or more", *maxFrames)
	case *batch < 0:
		return usagef("--batch %d: want 0 (automatic) or more", *batch)
	case *workers < 0:
		return usagef("--workers %d: want 0 (automatic) or more", *workers)
	}
	if dev.Type == torch.DeviceCUDA && dev.Index >= torch.CUDADeviceCount() {
		return fmt.Errorf("device %v: this machine has %d CUDA device(s)", dev, torch.CUDADeviceCount())
	}
	if *threads > 0 {
		torch.SetThreads(*threads)
	}
	if *concurrency == 0 {
		*concurrency = 1
		if dev.Type == torch.DeviceCUDA {
			*concurrency = 2
		}
	}
	ql := *queue
	if ql == 0 {
		ql = -1 // serve.Config: negative is no queue
	}

	ckpt, err := modelFile(fs, *modelPath)
	if err != nil {
		return err
	}
	*modelPath = ckpt
	m, meta, err := checkpoint.Load(*modelPath, checkpoint.LoadOptions{Device: dev, DType: dt})
	if err != nil {
		return err
	}
	defer m.Free()
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	popts := detect.PipelineOptions{BatchSize: *batch, Workers: *workers}
	if det, err := loadFaceDetector(*faceModels); err != nil {
		logger.Warn("no face detector: only aligned face crops can be analysed (photos and videos get 422)", "err", err)
	} else {
		defer det.Close()
		popts.Faces = det
	}
	p, err := detect.NewPipeline(m, popts)
	if err != nil {
		return err
	}
	srv := serve.New(p, serve.Config{
		MaxUploadBytes:  *maxUpload << 20,
		MaxConcurrent:   *concurrency,
		QueueLen:        ql,
		QueueWait:       *queueWait,
		RequestTimeout:  *timeout,
		ShutdownTimeout: *shutdown,
		Options:         detect.Options{Threshold: *threshold, Aligned: *aligned, MaxFrames: *maxFrames},
		ModelInfo: map[string]any{
			"name":       filepath.Base(*modelPath),
			"source":     meta.Provenance.Source,
			"epoch":      meta.Epoch,
			"image_size": meta.Config.ImageSize,
			"width":      meta.Config.Width,
			"localize":   meta.Config.Localize,
			"device":     dev.String(),
			"dtype":      dt.String(),
		},
		Logger: logger,
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stderr, "lvnet serve: http://%s/ (model %s on %v, %d at once, queue %d, uploads up to %d MiB); Ctrl-C stops\n",
		ln.Addr(), filepath.Base(*modelPath), dev, *concurrency, max(ql, 0), *maxUpload)
	if ready != nil {
		ready(ln.Addr())
	}
	t0 := time.Now()
	if err := srv.ServeListener(ctx, ln); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "lvnet serve: stopped after %s\n", time.Since(t0).Round(time.Second))
	return nil
}
