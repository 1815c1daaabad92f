package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/viz"
)

// fakeAnalyzer is a deterministic stand-in for detect.Pipeline. Images are
// decoded with package media (so bad images fail as they would for real);
// the result has one face covering the picture whose p_fake is the mean
// red value / 255 and whose patch grid (2x2 unless set) holds the mean red
// of each cell / 255, and a heatmap: the picture itself, or for pictures of
// 64 pixels and more its overlay by package viz, as a PNG data URL.
// Videos are probed with ffprobe (package media) and get one face per
// frame analysed with p_fake 0.25, 0.75, 0.25, ... .
type fakeAnalyzer struct {
	delay   time.Duration // sleep (honouring ctx) before answering
	block   chan struct{} // when set, wait for it to be closed (ignoring ctx)
	started chan string   // when set, receives the input name as an analysis starts
	err     error         // returned when set
	panics  bool          // panic when set
	match   string        // when set, delay, block, err and panics apply to inputs of this name only
	noProbe bool          // answer videos with no faces without running ffprobe (fast fuzzing)
	grid    int           // patch grid size (default 2)

	mu         sync.Mutex
	running    int
	maxRunning int
	calls      int
	inputs     []detect.Input
	opts       []detect.Options
	videoSeen  []string // paths of videos, checked to exist during the analysis
	imageSeen  []string // paths of spooled images, read during the analysis
}

func (f *fakeAnalyzer) Analyze(ctx context.Context, in detect.Input, opts detect.Options) (*detect.Result, error) {
	f.mu.Lock()
	f.running++
	f.calls++
	f.maxRunning = max(f.maxRunning, f.running)
	f.inputs = append(f.inputs, in)
	f.opts = append(f.opts, opts)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	if f.started != nil {
		f.started <- in.Name
	}
	if f.match == "" || f.match == in.Name {
		if f.block != nil {
			<-f.block
		}
		if f.delay > 0 {
			select {
			case <-time.After(f.delay):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if f.panics {
			panic("fake analyzer panic")
		}
		if f.err != nil {
			return nil, f.err
		}
	}
	thr := opts.Threshold
	if thr == 0 {
		thr = 0.5
	}
	label := func(p float64) string {
		if p >= thr {
			return "fake"
		}
		return "real"
	}
	var b []byte
	if in.Data == nil && !media.IsVideo(in.Path) { // a spooled image
		var err error
		if b, err = os.ReadFile(in.Path); err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.imageSeen = append(f.imageSeen, in.Path)
		f.mu.Unlock()
	} else if in.Data == nil {
		if _, err := os.Stat(in.Path); err == nil {
			f.mu.Lock()
			f.videoSeen = append(f.videoSeen, in.Path)
			f.mu.Unlock()
		}
		if f.noProbe {
			return &detect.Result{Input: in.Name, Kind: "video", Label: "none"}, nil
		}
		info, err := media.ProbeVideo(in.Path)
		if err != nil {
			return nil, err
		}
		res := &detect.Result{Input: in.Path, Kind: "video", Width: info.Width, Height: info.Height,
			Video: &detect.Video{Frames: info.Frames, FPS: info.FPS, Duration: info.Duration.Seconds()}}
		sum := 0.0
		for i := 0; i < info.Frames; i++ {
			p := 0.25 + 0.5*float64(i%2)
			sum += p
			res.Frames = append(res.Frames, detect.Frame{Index: i, Time: float64(i) / info.FPS,
				Faces: []detect.FrameFace{{ID: 0, BBox: [4]float64{0, 0, float64(info.Width), float64(info.Height)}, PFake: p}}})
		}
		if info.Frames == 0 {
			res.Label = "none"
			return res, nil
		}
		res.PFake = sum / float64(info.Frames)
		res.Label = label(res.PFake)
		res.Faces = []detect.Face{{ID: 0, PFake: res.PFake, Label: res.Label, NumFrames: info.Frames, MaxPFake: 0.75}}
		return res, nil
	}
	if b == nil {
		var err error
		if b, err = io.ReadAll(in.Data); err != nil {
			return nil, err
		}
	}
	img, err := media.DecodeImageBytes(b, in.Name)
	if err != nil {
		return nil, err
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	g := f.grid
	if g == 0 {
		g = 2
	}
	var total float64
	grid := make([][]float64, g)
	flat := make([]float64, 0, g*g)
	for i := range g {
		grid[i] = make([]float64, g)
		for j := range g {
			var sum float64
			y0, y1, x0, x1 := i*h/g, (i+1)*h/g, j*w/g, (j+1)*w/g
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					sum += float64(img.Pix[img.PixOffset(x, y)])
				}
			}
			total += sum
			if n := (y1 - y0) * (x1 - x0); n > 0 {
				grid[i][j] = sum / float64(n) / 255
			}
			flat = append(flat, grid[i][j])
		}
	}
	p := total / float64(w*h) / 255
	heat := ""
	if opts.InlinePNG {
		var over image.Image = img
		if min(w, h) >= 64 {
			if o, err := viz.Overlay(img, img.Rect, flat, g, p, label(p)); err == nil {
				over = o
			}
		}
		var pngBuf bytes.Buffer
		if err := png.Encode(&pngBuf, over); err != nil {
			return nil, err
		}
		heat = pngDataURL + base64.StdEncoding.EncodeToString(pngBuf.Bytes())
	}
	return &detect.Result{
		Input: in.Name, Kind: "image", PFake: p, Label: label(p), PatchPFake: grid, Width: w, Height: h, Heatmap: heat,
		Faces: []detect.Face{{ID: 0, BBox: [4]float64{0, 0, float64(w), float64(h)}, Score: 0.99, PFake: p, Label: label(p), PatchPFake: grid, Heatmap: heat}},
	}, nil
}

func (f *fakeAnalyzer) stats() (calls, maxRunning int, inputs []detect.Input) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.maxRunning, append([]detect.Input(nil), f.inputs...)
}

// lastOpts returns the options of the latest analysis.
func (f *fakeAnalyzer) lastOpts() detect.Options {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.opts) == 0 {
		return detect.Options{}
	}
	return f.opts[len(f.opts)-1]
}

// seenVideos returns how many spooled videos existed during their analysis.
func (f *fakeAnalyzer) seenVideos() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.videoSeen)
}

// startServer serves a fresh Server over loopback for the test's duration.
func startServer(t *testing.T, a detect.Analyzer, cfg Config) (*Server, string) {
	t.Helper()
	s := New(a, cfg)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// pngBytes encodes a w x h picture filled with c.
func pngBytes(t testing.TB, w, h int, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeader is a PNG of only its signature, an IHDR chunk claiming w x h
// and an IEND chunk.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		td := append([]byte(typ), data...)
		b.Write(td)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(td))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IEND", nil)
	return b.Bytes()
}

// multipartBody builds a multipart/form-data body with one part per file
// (field "file") and the given fields.
// (Writing to a bytes.Buffer cannot fail.)
func multipartBody(fields map[string]string, files ...fileArg) (*bytes.Buffer, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for _, f := range files {
		fw, _ := mw.CreateFormFile("file", f.name)
		fw.Write(f.data)
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

type fileArg struct {
	name string
	data []byte
}

// answer is a decoded HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
	resp   Response
	err    ErrorBody
}

// request sends a request and decodes its JSON answer; it fails when the
// answer is not the JSON expected for its status. Safe in any goroutine.
func request(method, url, contentType string, body io.Reader) (answer, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return answer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer res.Body.Close()
	a := answer{status: res.StatusCode, header: res.Header}
	a.body, err = io.ReadAll(res.Body)
	if err != nil {
		return a, fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return a, fmt.Errorf("%s %s: answer %d has Content-Type %q, want JSON: %s", method, url, res.StatusCode, ct, a.body)
	}
	if res.StatusCode == http.StatusOK {
		err = json.Unmarshal(a.body, &a.resp)
	} else {
		err = json.Unmarshal(a.body, &a.err)
		if err == nil && (a.err.Error == "" || a.err.Code == "") {
			err = errors.New("error answer without error or code")
		}
	}
	if err != nil {
		return a, fmt.Errorf("%s %s: answer %d is not the expected JSON (%v): %s", method, url, res.StatusCode, err, a.body)
	}
	return a, nil
}

// do is request, failing the test on error.
func do(t testing.TB, method, url, contentType string, body io.Reader) answer {
	t.Helper()
	a, err := request(method, url, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// postFile uploads data as a multipart file named name to the server.
func postFile(t testing.TB, base, query, name string, data []byte) answer {
	t.Helper()
	a, err := postFileE(base, query, name, data)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// postFileE is postFile for other goroutines.
func postFileE(base, query, name string, data []byte) (answer, error) {
	body, ct := multipartBody(nil, fileArg{name, data})
	return request("POST", base+"/v1/detect"+query, ct, body)
}

// makeVideo writes a short test-pattern MP4 of n frames, skipping the
// test when ffmpeg is absent.
func makeVideo(t testing.TB, dir string, n int) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (Debian package ffmpeg): skipping the video test")
	}
	p := filepath.Join(dir, "clip.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=64x48:rate=10:duration=%g", float64(n)/10),
		"-pix_fmt", "yuv420p", "-c:v", "mpeg4", "-y", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	return p
}

// waitFor polls cond every 5 ms for at most 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
