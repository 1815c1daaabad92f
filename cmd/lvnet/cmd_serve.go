package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/serve"
	"github.com/lvnet-go/lvnet/torch"
)

// serveCmd serves the detector over HTTP until ctx ends (SIGINT, SIGTERM).
func serveCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return serveMain(ctx, args, stderr, nil)
}

// serveMain parses the flags, loads the model and serves until ctx ends;
// ready (when not nil) is told the address once the server listens.
func serveMain(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	fs := newFlags(stderr, "serve", "--model M.safetensors [--addr 127.0.0.1:8080]")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	maxUpload := fs.Int64("max-upload", serve.DefaultMaxUploadBytes>>20, "largest upload in MiB")
	concurrency := fs.Int("concurrency", 0, "analyses run at once (default 1 on CPU, 2 on CUDA)")
	queue := fs.Int("queue", serve.DefaultQueueLen, "requests waiting for an analysis slot before 503 (0: none)")
	queueWait := fs.Duration("queue-wait", serve.DefaultQueueWait, "longest wait in the queue before 503")
	timeout := fs.Duration("timeout", serve.DefaultRequestTimeout, "longest request: upload, queue and analysis (then 504)")
	shutdown := fs.Duration("shutdown-timeout", serve.DefaultShutdownTimeout, "on SIGINT/SIGTERM, how long running requests may take to finish")
	quiet := fs.Bool("quiet", false, "log warnings and errors only, not every request")
	df := addDetectorFlags(fs, "treat uploads as aligned face crops unless a request says aligned=0",
		"folder of the face detector's models (without them only aligned face crops can be analysed)")
	modelPath, aligned, faceModels, threshold := df.model, df.aligned, df.faceModels, df.threshold
	maxFrames, batch, workers := df.maxFrames, df.batch, df.workers
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dev, dt, err := df.parse()
	if err != nil {
		return err
	}
	if err := df.check(fs); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected arguments %q: lvnet serve takes flags only", fs.Args())
	case *maxUpload < 1 || *maxUpload > 1<<20:
		return usagef("--max-upload %d: want 1 to %d MiB", *maxUpload, 1<<20)
	case *concurrency < 0:
		return usagef("--concurrency %d: want 0 (automatic) or more", *concurrency)
	case *queue < 0:
		return usagef("--queue %d: want 0 or more", *queue)
	case *queueWait <= 0 || *timeout <= 0 || *shutdown <= 0:
		return usagef("--queue-wait, --timeout and --shutdown-timeout must be positive")
	}
	if dev.Type == torch.DeviceCUDA && dev.Index >= torch.CUDADeviceCount() {
		return fmt.Errorf("device %v: this machine has %d CUDA device(s)", dev, torch.CUDADeviceCount())
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
	if !flagSet(fs, "threshold") {
		*threshold = meta.ThresholdOr(detect.DefaultThreshold)
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	popts := detect.PipelineOptions{BatchSize: *batch, Workers: *workers, Temperature: meta.TemperatureOr1()}
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
			"name":        filepath.Base(*modelPath),
			"source":      meta.Provenance.Source,
			"epoch":       meta.Epoch,
			"image_size":  meta.Config.ImageSize,
			"width":       meta.Config.Width,
			"localize":    meta.Config.Localize,
			"device":      dev.String(),
			"dtype":       dt.String(),
			"temperature": meta.TemperatureOr1(),
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
