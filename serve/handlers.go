package serve

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lvnet-go/lvnet/detect"
)

// Response is the JSON answer of POST /v1/detect: the document of
// `lvnet detect --json` ({"results": [...]}, one result: the uploaded
// file), plus the model and the time the analysis took. A file that cannot
// be analysed is answered with an error status and ErrorBody instead.
type Response struct {
	detect.Response
	Model   map[string]any `json:"model,omitempty"`
	Elapsed float64        `json:"elapsed_s"`
}

// Health is the JSON answer of GET /healthz.
type Health struct {
	Status         string         `json:"status"`
	Model          map[string]any `json:"model,omitempty"`
	Threshold      float64        `json:"threshold"` // default of the threshold query parameter
	Aligned        bool           `json:"aligned"`   // default of the aligned query parameter
	Running        int            `json:"running"`
	Queued         int            `json:"queued"`
	Uploading      int            `json:"uploading"` // requests reading their body (not yet admitted)
	MaxConcurrent  int            `json:"max_concurrent"`
	QueueLen       int            `json:"queue_len"`
	MaxUploads     int            `json:"max_uploads"`
	MaxUploadBytes int64          `json:"max_upload_bytes"`
	Uptime         float64        `json:"uptime_s"`
}

// heatmapPath is the URL path of linked heatmaps.
const heatmapPath = "/v1/heatmaps/"

// handleDetect answers POST /v1/detect.
func (s *Server) handleDetect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			msg: "use POST with a multipart upload (field \"file\") or the file as the body"})
		return
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, err.(*apiError))
		return
	}
	opts, inline, heatmaps, err := s.options(q)
	if err != nil {
		writeError(w, err.(*apiError))
		return
	}
	if r.ContentLength > s.cfg.MaxUploadBytes {
		writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large",
			msg: fmt.Sprintf("the upload has %d bytes, the limit is %s", r.ContentLength, formatBytes(s.cfg.MaxUploadBytes))})
		return
	}
	if s.gate.full() {
		// Turned away before the body is read: it would be after.
		writeError(w, s.busy("the server is busy: too many requests are waiting"))
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	up, err := s.receive(ctx, w, r)
	if err != nil {
		var ae *apiError
		switch {
		case errors.As(err, &ae):
		case ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded):
			ae = &apiError{status: http.StatusRequestTimeout, code: "upload_timeout", msg: "the upload took longer than the request timeout"}
		default:
			s.cfg.Logger.Error("reading upload", "err", err)
			ae = &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error: the upload could not be stored"}
		}
		writeError(w, ae)
		return
	}
	s.metrics.upload(up.size)
	if !s.gate.admit() {
		up.cleanup()
		writeError(w, s.busy("the server is busy: too many requests are waiting"))
		return
	}
	defer s.gate.leave()

	if err := s.gate.acquire(ctx, s.cfg.QueueWait); err != nil {
		up.cleanup()
		if errors.Is(err, errBusy) {
			writeError(w, s.busy("the server is busy: the wait for an analysis slot ran out"))
		} else {
			writeError(w, classify(err))
		}
		return
	}
	res, elapsed, err := s.analyze(ctx, up, opts)
	if err != nil {
		ae := classify(err)
		if ae.status == http.StatusInternalServerError {
			s.cfg.Logger.Error("analysis failed", "input", up.name, "err", err)
		}
		ae.msg = scrub(ae.msg, up)
		writeError(w, ae)
		return
	}
	s.finish(res, up, inline, heatmaps)
	writeJSON(w, http.StatusOK, Response{Response: detect.Response{Results: []*detect.Result{res}}, Model: s.cfg.ModelInfo, Elapsed: elapsed.Seconds()})
}

// receive reads the upload of a detection request in an upload place (503
// when none is free), bounding its size, the time it may stall and its
// rate (Config.UploadIdleTimeout, MinUploadRate).
func (s *Server) receive(ctx context.Context, w http.ResponseWriter, r *http.Request) (*upload, error) {
	if !s.gate.startUpload() {
		return nil, s.busy("the server is busy: too many uploads in progress")
	}
	defer s.gate.endUpload()
	dl, _ := ctx.Deadline()
	body := &uploadReader{r: http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes), rc: http.NewResponseController(w),
		start: time.Now(), end: dl, idle: s.cfg.UploadIdleTimeout, minRate: s.cfg.MinUploadRate}
	r.Body = body
	return readUpload(r, s.cfg.TempDir)
}

// analyze runs the analyzer on up in an analysis slot that it releases. The
// analysis runs in its own goroutine so that the request can be answered at
// its deadline even when the analyzer is slow to notice; the slot and the
// temporary file are freed when the analyzer returns.
func (s *Server) analyze(ctx context.Context, up *upload, opts detect.Options) (*detect.Result, time.Duration, error) {
	in := detect.Input{Name: up.name, Size: up.size}
	if up.path == "" {
		in.Data = bytes.NewReader(up.data)
	} else {
		in.Path = up.path
	}
	type outcome struct {
		res *detect.Result
		d   time.Duration
		err error
	}
	done := make(chan outcome, 1)
	s.work.add()
	go func() {
		defer s.work.done()
		var o outcome
		func() {
			// Free the slot and the file before answering, so that a
			// client that has its answer finds the server idle and clean.
			defer s.gate.release()
			defer up.cleanup()
			t0 := time.Now()
			o.res, o.err = s.safeAnalyze(ctx, in, opts)
			if o.err == nil && o.res == nil {
				o.err = errors.New("the analyzer returned no result")
			}
			o.d = time.Since(t0)
		}()
		if o.err != nil {
			s.metrics.analysis(o.d, "", 0, classify(o.err).code)
		} else {
			s.metrics.analysis(o.d, o.res.Label, len(o.res.Faces), "")
		}
		done <- o
	}()
	select {
	case o := <-done:
		return o.res, o.d, o.err
	case <-ctx.Done():
		select {
		case o := <-done:
			return o.res, o.d, o.err
		default:
			return nil, 0, ctx.Err()
		}
	}
}

// safeAnalyze calls the analyzer, turning a panic into an error.
func (s *Server) safeAnalyze(ctx context.Context, in detect.Input, opts detect.Options) (res *detect.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("analyzer panic", "input", in.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("analyzer panic: %v", p)
		}
	}()
	return s.an.Analyze(ctx, in, opts)
}

// finish makes a result fit to send: the client's name as its input, no
// server paths, heatmaps inline, linked or dropped.
func (s *Server) finish(res *detect.Result, up *upload, inline, heatmaps bool) {
	res.Input = up.name
	for i, w := range res.Warnings {
		res.Warnings[i] = scrub(w, up)
	}
	var fix func(string) string
	switch {
	case !heatmaps:
		fix = func(string) string { return "" }
	case inline:
		fix = func(h string) string {
			if strings.HasPrefix(h, pngDataURL) {
				return h
			}
			return "" // never a server path
		}
	default:
		fix = (&heatmapLinker{store: s.heat, prefix: heatmapPath, seen: map[string]string{}}).link
	}
	res.Heatmap = fix(res.Heatmap)
	for i := range res.Faces {
		res.Faces[i].Heatmap = fix(res.Faces[i].Heatmap)
	}
}

// scrub replaces the server's temporary path of an upload by its display
// name in a message.
func scrub(msg string, up *upload) string {
	if up == nil || up.path == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, up.path, up.name)
	return strings.ReplaceAll(msg, filepath.Base(up.path), up.name)
}

// busy is the 503 answer, with a Retry-After estimated from the mean
// analysis time and the queue.
func (s *Server) busy(msg string) *apiError {
	running, waiting, _ := s.gate.load()
	mean := s.metrics.meanLatency().Seconds()
	est := int(math.Ceil(mean * float64(waiting+running) / float64(s.cfg.MaxConcurrent)))
	return &apiError{status: http.StatusServiceUnavailable, code: "busy", msg: msg, retryAfter: min(max(est, 1), 600)}
}

// parseQuery parses a query string, refusing a malformed one.
func parseQuery(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badInput("bad_query", fmt.Sprintf("malformed query string: %v", err))
	}
	return q, nil
}

// options reads the analysis options from the query: threshold, every,
// max_frames, max_faces, aligned, and inline and heatmaps (whether to
// inline or return heatmaps at all).
func (s *Server) options(q url.Values) (opts detect.Options, inline, heatmaps bool, err error) {
	opts = s.cfg.Options
	heatmaps = true
	bad := func(name, want string) error {
		return badInput("bad_option", fmt.Sprintf("query parameter %s=%q: want %s", name, q.Get(name), want))
	}
	if v := q.Get("threshold"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= 1) {
			return opts, false, false, bad("threshold", "a number in (0, 1]")
		}
		opts.Threshold = f
	}
	ints := []struct {
		name     string
		dst      *int
		min, max int
	}{
		{"every", &opts.Every, 1, 1 << 20},
		{"max_frames", &opts.MaxFrames, 1, 1 << 30},
		{"max_faces", &opts.MaxFaces, 1, 256},
	}
	for _, p := range ints {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < p.min || n > p.max {
			return opts, false, false, bad(p.name, fmt.Sprintf("an integer in [%d, %d]", p.min, p.max))
		}
		*p.dst = n
	}
	if c := s.cfg.Options.MaxFrames; c > 0 && (opts.MaxFrames == 0 || opts.MaxFrames > c) {
		opts.MaxFrames = c
	}
	if c := s.cfg.Options.MaxFaces; c > 0 && opts.MaxFaces > c {
		opts.MaxFaces = c
	}
	bools := []struct {
		name string
		dst  *bool
	}{{"aligned", &opts.Aligned}, {"inline", &inline}, {"heatmaps", &heatmaps}}
	for _, p := range bools {
		vs, ok := q[p.name]
		if !ok {
			continue
		}
		if len(vs) == 0 || vs[0] == "" {
			*p.dst = true
			continue
		}
		b, err := strconv.ParseBool(vs[0])
		if err != nil {
			return opts, false, false, bad(p.name, "1 or 0, true or false")
		}
		*p.dst = b
	}
	opts.Heatmaps = "" // never a server directory named by a request
	opts.InlinePNG = heatmaps
	return opts, inline, heatmaps, nil
}

// handleHeatmap answers GET /v1/heatmaps/TOKEN.png from the store.
func (s *Server) handleHeatmap(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "use GET"})
		return
	}
	tok, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, heatmapPath), ".png")
	var png []byte
	if ok && isToken(tok) {
		png, ok = s.heat.get(tok)
	} else {
		ok = false
	}
	if !ok {
		writeError(w, &apiError{status: http.StatusNotFound, code: "not_found", msg: "no such heatmap (they are kept for a while only)"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/png")
	h.Set("Content-Length", strconv.Itoa(len(png)))
	h.Set("Cache-Control", "private, max-age=900")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(png)
	}
}

// isToken reports whether s is a 32-digit lower-case hex token.
func isToken(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// handleHealth answers GET /healthz.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "use GET"})
		return
	}
	running, waiting, _ := s.gate.load()
	writeJSON(w, http.StatusOK, Health{
		Status: "ok", Model: s.cfg.ModelInfo, Threshold: s.threshold(), Aligned: s.cfg.Options.Aligned, Running: running, Queued: waiting,
		Uploading: s.gate.uploading(), MaxConcurrent: s.cfg.MaxConcurrent, QueueLen: s.cfg.QueueLen, MaxUploads: s.cfg.MaxUploads,
		MaxUploadBytes: s.cfg.MaxUploadBytes,
		Uptime:         time.Since(s.metrics.startTime).Seconds(),
	})
}

// threshold is the default label threshold.
func (s *Server) threshold() float64 {
	if t := s.cfg.Options.Threshold; t > 0 {
		return t
	}
	return detect.DefaultThreshold
}

// handleMetrics answers GET /metrics in the Prometheus text format.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "use GET"})
		return
	}
	var b bytes.Buffer
	running, waiting, admitted := s.gate.load()
	if err := s.metrics.write(&b, running, waiting, admitted, s.gate.uploading()); err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

//go:embed page/index.html
var pageHTML []byte

// pageCSP keeps the page to itself: no other origin is contacted.
const pageCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
	"img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; form-action 'self'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// handlePage answers GET / with the web page; other paths are 404.
func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" && r.URL.Path != "/index.html" {
		writeError(w, &apiError{status: http.StatusNotFound, code: "not_found", msg: "no such page: the API is POST /v1/detect, GET /healthz, GET /metrics"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "use GET"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(pageHTML)
	}
}

// routeLabel names the route of a path for the metrics (a fixed set, so
// that clients cannot grow the label space).
func routeLabel(p string) string {
	switch {
	case p == "/v1/detect", p == "/healthz", p == "/metrics":
		return p
	case p == "/" || p == "/index.html":
		return "/"
	case strings.HasPrefix(p, heatmapPath):
		return heatmapPath
	}
	return "other"
}

// instrument wraps h: counts and logs every request, answers panics with a
// 500 JSON error, and sets the headers common to every answer. A request is
// counted when its status is written, before the client can see it.
func (s *Server) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		route := routeLabel(r.URL.Path)
		sw := &statusWriter{ResponseWriter: w, onStatus: func(code int) { s.metrics.request(route, code) }}
		sw.Header().Set("X-Content-Type-Options", "nosniff")
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.cfg.Logger.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !sw.wrote {
					writeError(sw, &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error"})
				}
			}
			if !sw.wrote {
				sw.WriteHeader(http.StatusOK)
			}
			s.cfg.Logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"bytes", sw.bytes, "duration", time.Since(t0).Round(time.Millisecond), "remote", r.RemoteAddr)
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusWriter records the status and size of an answer, and reports the
// status once when it is written.
type statusWriter struct {
	http.ResponseWriter
	onStatus func(code int)
	status   int
	bytes    int64
	wrote    bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
		w.onStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// tracker counts running analyses and lets shutdown wait for them.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.idle)
	}
	t.mu.Unlock()
}

// wait waits until no analysis runs or ctx ends; false when ctx ended.
func (t *tracker) wait(ctx context.Context) bool {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return true
	}
	ch := t.idle
	t.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}
