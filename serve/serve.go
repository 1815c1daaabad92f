package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/lvnet-go/lvnet/detect"
)

// Config tunes a Server. Zero fields select the defaults documented on each.
type Config struct {
	// MaxUploadBytes bounds the request body (default 200 MiB).
	MaxUploadBytes int64
	// MaxConcurrent is the number of analyses run at once (default 1, which
	// suits a CPU: one analysis already uses every core).
	MaxConcurrent int
	// QueueLen is the number of requests allowed to wait for an analysis
	// slot (default 4; negative: none). Requests beyond MaxConcurrent +
	// QueueLen are answered 503 with Retry-After at once.
	QueueLen int
	// QueueWait bounds the time a request waits in the queue before it is
	// answered 503 (default 1 minute).
	QueueWait time.Duration
	// MaxUploads is the number of requests that may read their body at
	// once (default 16). Uploads do not take an analysis or queue place:
	// a request is admitted once its body is read. Requests beyond it are
	// answered 503 at once. Each keeps at most 16 MiB in memory (larger
	// images are spooled to TempDir, as videos are).
	MaxUploads int
	// UploadIdleTimeout ends an upload that sends nothing for this long
	// (default 20 seconds), and is the grace period before MinUploadRate
	// applies. The answer is 408.
	UploadIdleTimeout time.Duration
	// MinUploadRate ends an upload that, past UploadIdleTimeout, has sent
	// less than this many bytes per second on average since it began
	// (default 8 KiB/s; negative: no minimum). The answer is 408.
	MinUploadRate int64
	// RequestTimeout bounds a whole request: upload, queue and analysis
	// (default 5 minutes). Past it the answer is 504.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of Serve: how long
	// running requests may take to finish (default 1 minute).
	ShutdownTimeout time.Duration
	// Options are the analysis defaults; query parameters override
	// Threshold, Every, MaxFrames and Aligned per request.
	Options detect.Options
	// ModelInfo describes the model (shown by /healthz and in results).
	ModelInfo map[string]any
	// TempDir holds spooled video uploads (default os.TempDir()).
	TempDir string
	// HeatmapCacheBytes bounds the memory of heatmaps kept for links
	// (default 64 MiB); HeatmapTTL is how long a link lives (default 15
	// minutes).
	HeatmapCacheBytes int64
	HeatmapTTL        time.Duration
	// Logger receives one line per request and the errors (default: none).
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxUploadBytes    = 200 << 20
	DefaultMaxConcurrent     = 1
	DefaultQueueLen          = 4
	DefaultQueueWait         = time.Minute
	DefaultMaxUploads        = 16
	DefaultUploadIdleTimeout = 20 * time.Second
	DefaultMinUploadRate     = 8 << 10
	DefaultRequestTimeout    = 5 * time.Minute
	DefaultShutdownTimeout   = time.Minute
)

func (c Config) withDefaults() Config {
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	switch {
	case c.QueueLen == 0:
		c.QueueLen = DefaultQueueLen
	case c.QueueLen < 0:
		c.QueueLen = 0
	}
	if c.QueueWait <= 0 {
		c.QueueWait = DefaultQueueWait
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = DefaultMaxUploads
	}
	if c.UploadIdleTimeout <= 0 {
		c.UploadIdleTimeout = DefaultUploadIdleTimeout
	}
	switch {
	case c.MinUploadRate == 0:
		c.MinUploadRate = DefaultMinUploadRate
	case c.MinUploadRate < 0:
		c.MinUploadRate = 0
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HeatmapCacheBytes <= 0 {
		c.HeatmapCacheBytes = 64 << 20
	}
	if c.HeatmapTTL <= 0 {
		c.HeatmapTTL = 15 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server answers the HTTP API with an Analyzer. Create it with New.
type Server struct {
	an      detect.Analyzer
	cfg     Config
	gate    *gate
	metrics *metrics
	heat    *heatStore
	handler http.Handler
	work    tracker // analyses still running (they may outlive their request)
}

// New returns a server running a; zero fields of cfg take their defaults.
func New(a detect.Analyzer, cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		an:      a,
		cfg:     cfg,
		gate:    newGate(cfg.MaxConcurrent, cfg.QueueLen, cfg.MaxUploads),
		metrics: newMetrics(),
		heat:    newHeatStore(cfg.HeatmapCacheBytes, cfg.HeatmapTTL),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/detect", s.handleDetect)
	mux.HandleFunc("/v1/heatmaps/", s.handleHeatmap)
	mux.HandleFunc("/healthz", s.handleHealth)
	mux.HandleFunc("/metrics", s.handleMetrics)
	mux.HandleFunc("/", s.handlePage)
	s.handler = s.instrument(mux)
	return s
}

// Handler returns the server's HTTP handler (for tests and for embedding in
// another server; Serve uses it).
func (s *Server) Handler() http.Handler { return s.handler }

// Config returns the configuration in use, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Serve listens on addr (host:port) and serves until ctx is cancelled, then
// shuts down gracefully (see ServeListener).
func (s *Server) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx is cancelled. It then stops
// accepting connections, lets running requests finish (for at most
// Config.ShutdownTimeout, after which connections are closed) and waits for
// running analyses, and returns nil. It closes ln.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// The detection handler sets its own read deadlines while it reads
		// an upload (Config.UploadIdleTimeout, MinUploadRate); this bounds
		// the bodies no handler reads.
		ReadTimeout:  s.cfg.UploadIdleTimeout + 10*time.Second,
		WriteTimeout: s.cfg.RequestTimeout + 30*time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.cfg.Logger.Info("shutting down", "addr", ln.Addr().String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		s.cfg.Logger.Warn("graceful shutdown timed out: closing connections", "err", err)
		srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), serr)
	}
	// Analyses whose request timed out may still run: wait for them (their
	// temporary files are removed when they return), within the budget.
	if !s.work.wait(sctx) {
		s.cfg.Logger.Warn("shutdown: analyses still running after the timeout")
	}
	return nil
}
