package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/media"
)

func TestDetectImage(t *testing.T) {
	red200 := pngBytes(t, 8, 6, color.RGBA{200, 10, 10, 255}) // p_fake = 200/255
	red50 := pngBytes(t, 8, 6, color.RGBA{50, 10, 10, 255})   // p_fake = 50/255
	tests := []struct {
		name      string
		send      func(base string) answer
		wantName  string
		wantP     float64
		wantLabel string
		wantThr   float64
	}{
		{"multipart", func(b string) answer { return postFile(t, b, "", "face.png", red200) }, "face.png", 200.0 / 255, "fake", 0},
		{"raw body named by query", func(b string) answer {
			return do(t, "POST", b+"/v1/detect?name=raw.png", "image/png", bytes.NewReader(red50))
		}, "raw.png", 50.0 / 255, "real", 0},
		{"raw body unnamed", func(b string) answer {
			return do(t, "POST", b+"/v1/detect", "application/octet-stream", bytes.NewReader(red50))
		}, "upload", 50.0 / 255, "real", 0},
		{"client path is only a name", func(b string) answer { return postFile(t, b, "", `../../etc/passwd.png`, red200) }, "passwd.png", 200.0 / 255, "fake", 0},
		{"windows path", func(b string) answer { return postFile(t, b, "", `C:\Users\x\me.png`, red200) }, "me.png", 200.0 / 255, "fake", 0},
		{"threshold from the query", func(b string) answer { return postFile(t, b, "?threshold=0.9", "a.png", red200) }, "a.png", 200.0 / 255, "real", 0.9},
		{"form fields are ignored", func(b string) answer {
			body, ct := multipartBody(map[string]string{"note": "hello"}, fileArg{"b.png", red50})
			return do(t, "POST", b+"/v1/detect", ct, body)
		}, "b.png", 50.0 / 255, "real", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeAnalyzer{}
			_, base := startServer(t, fake, Config{ModelInfo: map[string]any{"name": "test-model"}})
			a := tc.send(base)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if len(a.resp.Results) != 1 {
				t.Fatalf("%d results, want 1", len(a.resp.Results))
			}
			r := a.resp.Results[0]
			if r.Input != tc.wantName || r.Kind != "image" || r.Label != tc.wantLabel || math.Abs(r.PFake-tc.wantP) > 1e-12 {
				t.Errorf("result input %q kind %q label %q p_fake %v, want %q image %q %v", r.Input, r.Kind, r.Label, r.PFake, tc.wantName, tc.wantLabel, tc.wantP)
			}
			if r.Width != 8 || r.Height != 6 || len(r.Faces) != 1 || len(r.PatchPFake) != 2 {
				t.Errorf("result %dx%d with %d faces and a %d-row grid, want 8x6, 1 face, 2 rows", r.Width, r.Height, len(r.Faces), len(r.PatchPFake))
			}
			if a.resp.Model["name"] != "test-model" {
				t.Errorf("model info %v, want name test-model", a.resp.Model)
			}
			_, _, inputs := fake.stats()
			if len(inputs) != 1 {
				t.Fatalf("analyzer called %d times, want 1", len(inputs))
			}
			in := inputs[0]
			if in.Path != "" || in.Data == nil || in.Name != tc.wantName || in.Size <= 0 {
				t.Errorf("analyzer input: name %q path %q data %v size %d; want the image in memory, named %q", in.Name, in.Path, in.Data != nil, in.Size, tc.wantName)
			}
			if thr := fake.lastOpts().Threshold; thr != tc.wantThr {
				t.Errorf("threshold passed %v, want %v", thr, tc.wantThr)
			}
		})
	}
}

func TestDetectHeatmaps(t *testing.T) {
	img := pngBytes(t, 4, 4, color.RGBA{255, 0, 0, 255})
	fake := &fakeAnalyzer{}
	_, base := startServer(t, fake, Config{})

	// inline=1: data URLs of the overlay, as the analyzer made them.
	a := postFile(t, base, "?inline=1", "a.png", img)
	r := a.resp.Results[0]
	b64, ok := strings.CutPrefix(r.Heatmap, pngDataURL)
	if !ok {
		t.Fatalf("inline heatmap %.40q is not a PNG data URL", r.Heatmap)
	}
	inlinePNG, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	if r.Faces[0].Heatmap != r.Heatmap {
		t.Errorf("face heatmap differs from the result's")
	}

	// Default: links serving the same PNG, one per distinct picture.
	a = postFile(t, base, "", "a.png", img)
	r = a.resp.Results[0]
	if !strings.HasPrefix(r.Heatmap, heatmapPath) || !strings.HasSuffix(r.Heatmap, ".png") {
		t.Fatalf("heatmap %q is not a link under %s", r.Heatmap, heatmapPath)
	}
	if r.Faces[0].Heatmap != r.Heatmap {
		t.Errorf("face heatmap link %q, want the same picture's link %q", r.Faces[0].Heatmap, r.Heatmap)
	}
	res, err := http.Get(base + r.Heatmap)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || !bytes.Equal(got, inlinePNG) {
		t.Errorf("GET %s: %d %s, %d bytes; want the %d-byte PNG", r.Heatmap, res.StatusCode, res.Header.Get("Content-Type"), len(got), len(inlinePNG))
	}

	// heatmaps=0: none asked for, none returned.
	a = postFile(t, base, "?heatmaps=0", "a.png", img)
	if h := a.resp.Results[0].Heatmap; h != "" || fake.lastOpts().InlinePNG {
		t.Errorf("heatmaps=0: heatmap %q, InlinePNG %v; want none", h, fake.lastOpts().InlinePNG)
	}

	for _, p := range []string{"/v1/heatmaps/0123456789abcdef0123456789abcdef.png", "/v1/heatmaps/../../etc/passwd", "/v1/heatmaps/x.png"} {
		if a := do(t, "GET", base+p, "", nil); a.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, a.status)
		}
	}
}

// TestAnalyzerNeverGetsServerPaths checks that a server path in a result is
// not sent to the client.
func TestAnalyzerNeverGetsServerPaths(t *testing.T) {
	an := analyzerFunc(func(ctx context.Context, in detect.Input, opts detect.Options) (*detect.Result, error) {
		return &detect.Result{Input: "/srv/secret/in.png", Kind: "image", Label: "real", Heatmap: "/srv/secret/heat.png",
			Faces: []detect.Face{{Heatmap: "/srv/secret/face.png"}}}, nil
	})
	_, base := startServer(t, an, Config{})
	for _, q := range []string{"", "?inline=1"} {
		a := postFile(t, base, q, "x.png", pngBytes(t, 2, 2, color.RGBA{A: 255}))
		if strings.Contains(string(a.body), "/srv/secret") {
			t.Errorf("answer to %q leaks a server path: %s", q, a.body)
		}
	}
}

type analyzerFunc func(context.Context, detect.Input, detect.Options) (*detect.Result, error)

func (f analyzerFunc) Analyze(ctx context.Context, in detect.Input, o detect.Options) (*detect.Result, error) {
	return f(ctx, in, o)
}

func TestDetectVideo(t *testing.T) {
	dir := t.TempDir()
	clip, err := os.ReadFile(makeVideo(t, dir, 6))
	if err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	fake := &fakeAnalyzer{}
	_, base := startServer(t, fake, Config{TempDir: spool})
	a := postFile(t, base, "?max_frames=100", "holiday.mp4", clip)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	r := a.resp.Results[0]
	if r.Kind != "video" || r.Input != "holiday.mp4" || r.Video == nil || r.Video.Frames != 6 || len(r.Frames) != 6 {
		t.Fatalf("result kind %q input %q video %+v with %d frames; want a 6-frame video named holiday.mp4", r.Kind, r.Input, r.Video, len(r.Frames))
	}
	if want := 0.5; math.Abs(r.PFake-want) > 1e-12 || r.Label != "fake" {
		t.Errorf("p_fake %v label %q, want %v fake", r.PFake, r.Label, want)
	}
	_, _, inputs := fake.stats()
	in := inputs[0]
	if in.Data != nil || filepath.Dir(in.Path) != spool || strings.Contains(in.Path, "holiday") {
		t.Errorf("analyzer input path %q (data %v): want a server-named file in %s", in.Path, in.Data != nil, spool)
	}
	if fake.seenVideos() != 1 {
		t.Errorf("the spooled video did not exist during the analysis")
	}
	left, _ := os.ReadDir(spool)
	if len(left) != 0 {
		t.Errorf("%d temporary file(s) left in the spool folder, want none", len(left))
	}
}

func TestBadInputs(t *testing.T) {
	good := pngBytes(t, 4, 4, color.RGBA{10, 20, 30, 255})
	trunc := pngBytes(t, 64, 64, color.RGBA{10, 200, 30, 255})
	trunc = trunc[:len(trunc)/2]
	spool := t.TempDir()
	_, base := startServer(t, &fakeAnalyzer{}, Config{TempDir: spool, MaxUploadBytes: 64 << 10})
	big := bytes.Repeat([]byte{0xFF, 0xD8, 0xFF}, 30000) // 90 KB "JPEG"
	_, noProbe := exec.LookPath("ffprobe")

	tests := []struct {
		name       string
		method     string
		query      string
		body       func() (io.Reader, string)
		wantStatus int
		wantCode   string // "" any
		wantIn     string // in the message
		ffprobe    bool   // the case needs ffprobe
	}{
		{name: "empty raw body", method: "POST", query: "?name=e.jpg", body: raw("", nil), wantStatus: 400, wantCode: "empty", wantIn: "e.jpg: the file is empty"},
		{name: "empty multipart file", method: "POST", body: file("e.png", nil), wantStatus: 400, wantCode: "empty", wantIn: "e.png"},
		{name: "zero-byte video", method: "POST", body: file("clip.mp4", nil), wantStatus: 400, wantCode: "empty", wantIn: "clip.mp4"},
		{name: "text renamed .jpg", method: "POST", body: file("notes.jpg", []byte("dear diary, today I...\n")), wantStatus: 415, wantCode: "unsupported_media", wantIn: "notes.jpg: not an image or a video (looks like text)"},
		{name: "PDF", method: "POST", body: file("doc.png", []byte("%PDF-1.4\n...")), wantStatus: 415, wantCode: "unsupported_media", wantIn: "PDF"},
		{name: "unknown binary", method: "POST", body: file("x.dat", []byte{0, 1, 2, 3, 200, 201}), wantStatus: 415, wantCode: "unsupported_media", wantIn: "unknown format"},
		{name: "truncated PNG", method: "POST", body: file("cut.png", trunc), wantStatus: 400, wantCode: "truncated", wantIn: "cut.png"},
		{name: "50000x50000 PNG header", method: "POST", body: file("huge.png", pngHeader(50000, 50000)), wantStatus: 413, wantCode: "too_large", wantIn: "50000x50000"},
		{name: "PNG header of 0x0", method: "POST", body: file("zero.png", pngHeader(0, 0)), wantStatus: 400, wantIn: "zero.png"},
		{name: "junk named .mp4", method: "POST", body: file("junk.mp4", bytes.Repeat([]byte{0x13, 0x37, 0x00}, 100)), wantStatus: 400, wantIn: "junk.mp4", ffprobe: true},
		{name: "multipart without a file", method: "POST", body: func() (io.Reader, string) { return multipartBody(map[string]string{"a": "b"}) }, wantStatus: 400, wantCode: "no_file", wantIn: "no file"},
		{name: "two files", method: "POST", body: func() (io.Reader, string) {
			return multipartBody(nil, fileArg{"a.png", good}, fileArg{"b.png", good})
		}, wantStatus: 400, wantCode: "too_many_files", wantIn: "one file"},
		{name: "multipart cut short", method: "POST", body: func() (io.Reader, string) {
			b, ct := multipartBody(nil, fileArg{"a.png", good})
			return bytes.NewReader(b.Bytes()[:b.Len()-20]), ct
		}, wantStatus: 400},
		{name: "multipart without boundary", method: "POST", body: raw("multipart/form-data", good), wantStatus: 400, wantCode: "bad_multipart", wantIn: "boundary"},
		{name: "too large", method: "POST", body: file("big.jpg", big), wantStatus: 413, wantCode: "too_large", wantIn: "64 KiB"},
		{name: "too large, streamed", method: "POST", query: "?name=big.jpg", body: func() (io.Reader, string) {
			return io.MultiReader(bytes.NewReader(big)), "image/jpeg" // no Content-Length
		}, wantStatus: 413, wantCode: "too_large", wantIn: "64 KiB"},
		{name: "bad threshold", method: "POST", query: "?threshold=2", body: file("a.png", good), wantStatus: 400, wantCode: "bad_option", wantIn: "threshold"},
		{name: "bad every", method: "POST", query: "?every=-1", body: file("a.png", good), wantStatus: 400, wantCode: "bad_option", wantIn: "every"},
		{name: "bad bool", method: "POST", query: "?inline=maybe", body: file("a.png", good), wantStatus: 400, wantCode: "bad_option", wantIn: "inline"},
		{name: "bad query", method: "POST", query: "?%zz", body: file("a.png", good), wantStatus: 400, wantCode: "bad_query", wantIn: "query"},
		{name: "GET", method: "GET", body: raw("", nil), wantStatus: 405, wantCode: "method_not_allowed", wantIn: "POST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ffprobe && noProbe != nil {
				t.Skip("ffprobe not installed (Debian package ffmpeg)")
			}
			body, ct := tc.body()
			a := do(t, tc.method, base+"/v1/detect"+tc.query, ct, body)
			if a.status != tc.wantStatus || (tc.wantCode != "" && a.err.Code != tc.wantCode) || !strings.Contains(a.err.Error, tc.wantIn) {
				t.Errorf("got %d %q %q; want %d %q with %q", a.status, a.err.Code, a.err.Error, tc.wantStatus, tc.wantCode, tc.wantIn)
			}
			if strings.Contains(a.err.Error, spool) || strings.Contains(a.err.Error, "lvnet-upload-") {
				t.Errorf("message %q names a server path", a.err.Error)
			}
		})
	}
	// The server still serves, and left no temporary files behind.
	if a := postFile(t, base, "", "ok.png", good); a.status != 200 {
		t.Fatalf("after the bad inputs: %d %s", a.status, a.body)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("%d temporary file(s) left behind", len(left))
	}
}

// raw is a request body of Content-Type ct (default application/octet-stream).
func raw(ct string, b []byte) func() (io.Reader, string) {
	if ct == "" {
		ct = "application/octet-stream"
	}
	return func() (io.Reader, string) { return bytes.NewReader(b), ct }
}

// file is a multipart body with one file.
func file(name string, b []byte) func() (io.Reader, string) {
	return func() (io.Reader, string) { return multipartBody(nil, fileArg{name, b}) }
}

// TestBusy fills the analysis slot and the queue, and checks that more
// requests are turned away at once with 503 and Retry-After, that at most
// MaxConcurrent analyses ever run, and that the queued requests complete.
func TestBusy(t *testing.T) {
	const slots, queue, extra = 1, 2, 5
	fake := &fakeAnalyzer{block: make(chan struct{}), started: make(chan string, 16)}
	s, base := startServer(t, fake, Config{MaxConcurrent: slots, QueueLen: queue, QueueWait: time.Minute})
	release := sync1(func() { close(fake.block) })
	t.Cleanup(release)
	img := pngBytes(t, 2, 2, color.RGBA{255, 255, 255, 255})

	type reply struct {
		a   answer
		idx int
	}
	replies := make(chan reply, slots+queue+extra)
	send := func(i int) {
		go func() {
			a, err := postFileE(base, "", fmt.Sprintf("%d.png", i), img)
			if err != nil {
				a.status, a.body = -1, []byte(err.Error())
			}
			replies <- reply{a, i}
		}()
	}
	send(0)
	<-fake.started // the first one runs
	for i := 1; i <= queue; i++ {
		send(i)
	}
	waitFor(t, "the queue to fill", func() bool { _, w, _ := s.gate.load(); return w == queue })
	if m := scrape(t, base); m["lvnet_queue_length"] != queue || m["lvnet_inferences_in_flight"] != 1 {
		t.Errorf("metrics queue %v in flight %v, want %d and 1", m["lvnet_queue_length"], m["lvnet_inferences_in_flight"], queue)
	}
	for i := 0; i < extra; i++ {
		a := postFile(t, base, "", "late.png", img)
		if a.status != http.StatusServiceUnavailable || a.err.Code != "busy" {
			t.Errorf("request beyond the queue: %d %q, want 503 busy", a.status, a.err.Code)
		}
		if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("503 without a positive Retry-After (%q)", ra)
		}
	}
	if h := do(t, "GET", base+"/healthz", "", nil); h.status != 200 {
		t.Errorf("healthz while busy: %d", h.status)
	}
	release()
	for i := 0; i <= queue; i++ {
		select {
		case r := <-replies:
			if r.a.status != 200 {
				t.Errorf("request %d: %d %s", r.idx, r.a.status, r.a.body)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("queued requests did not complete")
		}
	}
	calls, maxRunning, _ := fake.stats()
	if calls != 1+queue || maxRunning != slots {
		t.Errorf("%d analyses, at most %d at once; want %d and %d", calls, maxRunning, 1+queue, slots)
	}
}

// sync1 makes f safe to call more than once.
func sync1(f func()) func() {
	done := false
	return func() {
		if !done {
			done = true
			f()
		}
	}
}

func TestQueueWait(t *testing.T) {
	fake := &fakeAnalyzer{block: make(chan struct{}), started: make(chan string, 4)}
	_, base := startServer(t, fake, Config{QueueWait: 50 * time.Millisecond})
	t.Cleanup(func() { close(fake.block) })
	img := pngBytes(t, 2, 2, color.RGBA{A: 255})
	go postFileE(base, "", "first.png", img)
	<-fake.started
	a := postFile(t, base, "", "second.png", img)
	if a.status != 503 || a.err.Code != "busy" || a.header.Get("Retry-After") == "" {
		t.Errorf("waited past QueueWait: %d %q Retry-After %q; want 503 busy with Retry-After", a.status, a.err.Code, a.header.Get("Retry-After"))
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		name string
		fake *fakeAnalyzer
	}{
		{"analyzer honours ctx", &fakeAnalyzer{delay: time.Minute, match: "slow.png"}},
		{"analyzer ignores ctx", &fakeAnalyzer{block: make(chan struct{}), match: "slow.png"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, base := startServer(t, tc.fake, Config{RequestTimeout: 100 * time.Millisecond})
			img := pngBytes(t, 2, 2, color.RGBA{A: 255})
			a := postFile(t, base, "", "slow.png", img)
			if a.status != http.StatusGatewayTimeout || a.err.Code != "timeout" {
				t.Errorf("got %d %q, want 504 timeout", a.status, a.err.Code)
			}
			if tc.fake.block != nil {
				// The slot stays taken until the analyzer returns.
				if running, _, _ := s.gate.load(); running != 1 {
					t.Errorf("%d analyses running, want the stuck one", running)
				}
				close(tc.fake.block)
			}
			waitFor(t, "the slot to be freed", func() bool { r, _, _ := s.gate.load(); return r == 0 })
			if a := postFile(t, base, "", "next.png", img); a.status != 200 {
				t.Errorf("after the timeout: %d %s", a.status, a.body)
			}
		})
	}
}

func TestAnalyzerErrors(t *testing.T) {
	tests := []struct {
		name       string
		fake       *fakeAnalyzer
		wantStatus int
		wantCode   string
		notIn      string
	}{
		{"internal error", &fakeAnalyzer{err: errors.New("open /srv/models/lvnet.pt: permission denied")}, 500, "internal", "/srv/models"},
		{"panic", &fakeAnalyzer{panics: true}, 500, "internal", "panic"},
		{"media error", &fakeAnalyzer{err: fmt.Errorf("frame 3: %w", media.ErrCorrupt)}, 400, "corrupt", ""},
		{"not a video", &fakeAnalyzer{err: fmt.Errorf("x: %w", media.ErrNotVideo)}, 415, "unsupported_media", ""},
		{"deadline", &fakeAnalyzer{err: fmt.Errorf("batch: %w", context.DeadlineExceeded)}, 504, "timeout", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fake.match = "bad.png"
			_, base := startServer(t, tc.fake, Config{})
			img := pngBytes(t, 2, 2, color.RGBA{A: 255})
			a := postFile(t, base, "", "bad.png", img)
			if a.status != tc.wantStatus || a.err.Code != tc.wantCode || (tc.notIn != "" && strings.Contains(a.err.Error, tc.notIn)) {
				t.Errorf("got %d %q %q; want %d %q without %q", a.status, a.err.Code, a.err.Error, tc.wantStatus, tc.wantCode, tc.notIn)
			}
			if a := postFile(t, base, "", "good.png", img); a.status != 200 {
				t.Errorf("the server stopped serving: %d %s", a.status, a.body)
			}
		})
	}
}

// TestTempPathScrubbed checks that a video's server-side file name in an
// error is replaced by the client's name.
func TestTempPathScrubbed(t *testing.T) {
	an := analyzerFunc(func(ctx context.Context, in detect.Input, opts detect.Options) (*detect.Result, error) {
		return nil, fmt.Errorf("%s: %w (ffprobe: %s: Invalid data)", filepath.Base(in.Path), media.ErrNotVideo, in.Path)
	})
	_, base := startServer(t, an, Config{TempDir: t.TempDir()})
	a := postFile(t, base, "", "trip.mkv", []byte("\x1a\x45\xdf\xa3 not really"))
	if a.status != 415 || strings.Contains(a.err.Error, "lvnet-upload") || !strings.Contains(a.err.Error, "trip.mkv: not a video (ffprobe: trip.mkv: Invalid data)") {
		t.Errorf("got %d %q", a.status, a.err.Error)
	}
}

func TestShutdown(t *testing.T) {
	fake := &fakeAnalyzer{block: make(chan struct{}), started: make(chan string, 1)}
	s := New(fake, Config{ShutdownTimeout: 10 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.ServeListener(ctx, ln) }()
	release := sync1(func() { close(fake.block) })
	defer release()

	img := pngBytes(t, 2, 2, color.RGBA{A: 255})
	inflight := make(chan answer, 1)
	go func() {
		a, err := postFileE(base, "", "last.png", img)
		if err != nil {
			a.status, a.body = -1, []byte(err.Error())
		}
		inflight <- a
	}()
	<-fake.started
	cancel()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) before the running request finished", err)
	default:
	}
	release()
	select {
	case a := <-inflight:
		if a.status != 200 {
			t.Errorf("request running at shutdown: %d %s", a.status, a.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the running request did not complete")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
}

func TestServeBadAddress(t *testing.T) {
	s := New(&fakeAnalyzer{}, Config{})
	err := s.Serve(context.Background(), "127.0.0.1:99999")
	if err == nil || !strings.Contains(err.Error(), "99999") {
		t.Errorf("Serve on a bad port: %v, want an error naming it", err)
	}
}

func TestHealthAndPage(t *testing.T) {
	_, base := startServer(t, &fakeAnalyzer{}, Config{MaxConcurrent: 3, QueueLen: -1, ModelInfo: map[string]any{"name": "m"}})
	h := do(t, "GET", base+"/healthz", "", nil)
	var health Health
	if err := json.Unmarshal(h.body, &health); err != nil || h.status != 200 || health.Status != "ok" || health.MaxConcurrent != 3 ||
		health.QueueLen != 0 || health.Threshold != 0.5 || health.Model["name"] != "m" || health.MaxUploadBytes != DefaultMaxUploadBytes {
		t.Errorf("healthz: %d %s", h.status, h.body)
	}
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'none'") || !bytes.Contains(page, []byte(`id="verdict"`)) {
		t.Errorf("GET /: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(page))
	}
	// The page is self-contained: nothing is loaded from elsewhere.
	for _, ext := range []string{"http://", "https://", "//cdn"} {
		if i := bytes.Index(page, []byte(ext)); i >= 0 && !bytes.HasPrefix(page[i:], []byte("http://www.w3.org/2000/svg")) {
			t.Errorf("the page refers to %q", page[i:min(len(page), i+60)])
		}
	}
	for _, p := range []string{"/nope", "/v1", "/../etc/passwd"} {
		if a := do(t, "GET", base+p, "", nil); a.status != 404 || a.err.Code != "not_found" {
			t.Errorf("GET %s: %d %q, want 404 not_found", p, a.status, a.err.Code)
		}
	}
	if a := do(t, "POST", base+"/healthz", "", nil); a.status != 405 {
		t.Errorf("POST /healthz: %d, want 405", a.status)
	}
}

// TestClientGone checks that a client hanging up stops its analysis and
// frees the slot.
func TestClientGone(t *testing.T) {
	fake := &fakeAnalyzer{delay: time.Minute, match: "slow.png", started: make(chan string, 2)}
	s, base := startServer(t, fake, Config{})
	body, ct := multipartBody(nil, fileArg{"slow.png", pngBytes(t, 2, 2, color.RGBA{A: 255})})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/detect", body)
	req.Header.Set("Content-Type", ct)
	errc := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	<-fake.started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v, want context.Canceled", err)
	}
	waitFor(t, "the analysis to stop", func() bool { r, _, a := s.gate.load(); return r == 0 && a == 0 })
	waitFor(t, "the request to be counted", func() bool {
		return scrape(t, base)[`lvnet_http_requests_total{code="499",path="/v1/detect"}`] == 1
	})
	if m := scrape(t, base); m[`lvnet_analysis_errors_total{code="canceled"}`] != 1 {
		t.Errorf("canceled analyses: %v, want 1", m[`lvnet_analysis_errors_total{code="canceled"}`])
	}
}

// BenchmarkDetectUpload measures the server's own cost per request over
// loopback: multipart parsing, sniffing, the gate, an analyzer that answers
// at once, and the JSON answer (heatmap links).
func BenchmarkDetectUpload(b *testing.B) {
	an := analyzerFunc(func(ctx context.Context, in detect.Input, opts detect.Options) (*detect.Result, error) {
		io.Copy(io.Discard, in.Data)
		return &detect.Result{Kind: "image", Label: "real", Faces: []detect.Face{{Label: "real"}}}, nil
	})
	s := New(an, Config{})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	img := pngBytes(b, 256, 256, color.RGBA{90, 120, 150, 255})
	body, ct := multipartBody(nil, fileArg{"bench.png", img})
	raw := body.Bytes()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		res, err := http.Post(ts.URL+"/v1/detect", ct, bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
