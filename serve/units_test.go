package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/media"
)

func TestDisplayName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"face.png", "face.png"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\clip.mp4`, "clip.mp4"},
		{"dir/", "upload"},
		{"", "upload"},
		{"..", "upload"},
		{" . ", "upload"},
		{"a\x00b\nc\u202e.png", "abc.png"},
		{"\xff\xfeimg.jpg", "img.jpg"},
		{strings.Repeat("é", 200), strings.Repeat("é", 120)},
		{"photo (1).JPG", "photo (1).JPG"},
	} {
		if got := displayName(tc.in); got != tc.want {
			t.Errorf("displayName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSniff(t *testing.T) {
	ts := make([]byte, 400)
	ts[0], ts[188], ts[376] = 0x47, 0x47, 0x47
	for _, tc := range []struct {
		name       string
		head       []byte
		file       string
		kind, form string
		why        string
	}{
		{"jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0}, "a.png", kindImage, "JPEG", ""},
		{"png", pngHeader(1, 1), "a", kindImage, "PNG", ""},
		{"gif", []byte("GIF89a...."), "", kindImage, "GIF", ""},
		{"bmp", append([]byte("BM"), make([]byte, 20)...), "", kindImage, "BMP", ""},
		{"text starting BM", []byte("BMW is a car brand, not a bitmap"), "", "", "", "looks like text"},
		{"webp", []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "", kindImage, "WebP", ""},
		{"mp4", []byte("\x00\x00\x00\x18ftypisom\x00\x00"), "x.jpg", kindVideo, "MP4", ""},
		{"mov", []byte("\x00\x00\x00\x14ftypqt  \x00\x00"), "", kindVideo, "QuickTime", ""},
		{"heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00"), "", "", "", "HEIF"},
		{"webm", []byte{0x1A, 0x45, 0xDF, 0xA3, 1}, "", kindVideo, "Matroska/WebM", ""},
		{"avi", []byte("RIFF\x00\x00\x00\x00AVI LIST"), "", kindVideo, "AVI", ""},
		{"mpeg-ts", ts, "", kindVideo, "MPEG-TS", ""},
		{"tiff", []byte("II*\x00\x08\x00"), "", "", "", "TIFF"},
		{"zip", []byte("PK\x03\x04rest"), "a.mp4", "", "", "ZIP"},
		{"text", []byte("hello\nworld\n"), "a.jpg", "", "", "looks like text"},
		{"binary, video name", []byte{0, 0, 0, 1, 0x67}, "clip.H264", kindVideo, "H264", ""},
		{"binary, other name", []byte{0, 0, 0, 1, 0x67}, "clip.bin", "", "", "unknown format, starts with 00 00 00 01 67"},
	} {
		kind, form, why := sniff(tc.head, tc.file)
		if kind != tc.kind || form != tc.form || !strings.Contains(why, tc.why) || (tc.why == "" && why != "") {
			t.Errorf("%s: sniff = %q %q %q, want %q %q %q", tc.name, kind, form, why, tc.kind, tc.form, tc.why)
		}
	}
}

func TestVideoSuffix(t *testing.T) {
	for f, want := range map[string]string{"MP4": ".mp4", "Matroska/WebM": ".mkv", "MPEG-TS": ".ts", "H264": ".h264", "../x": ".bin"} {
		if got := videoSuffix(f); got != want {
			t.Errorf("videoSuffix(%q) = %q, want %q", f, got, want)
		}
	}
}

func TestOptions(t *testing.T) {
	s := New(&fakeAnalyzer{}, Config{Options: detect.Options{Threshold: 0.6, MaxFrames: 300, MaxFaces: 16, Heatmaps: "/srv/heat"}})
	for _, tc := range []struct {
		query   string
		want    detect.Options
		inline  bool
		heat    bool
		wantErr string
	}{
		{"", detect.Options{Threshold: 0.6, MaxFrames: 300, MaxFaces: 16, InlinePNG: true}, false, true, ""},
		{"threshold=0.25&every=5&max_frames=10&aligned=1&inline", detect.Options{Threshold: 0.25, Every: 5, MaxFrames: 10, MaxFaces: 16, Aligned: true, InlinePNG: true}, true, true, ""},
		{"max_frames=5000&max_faces=100", detect.Options{Threshold: 0.6, MaxFrames: 300, MaxFaces: 16, InlinePNG: true}, false, true, ""},
		{"heatmaps=false&max_faces=2", detect.Options{Threshold: 0.6, MaxFrames: 300, MaxFaces: 2}, false, false, ""},
		{"threshold=nan", detect.Options{}, false, false, "threshold"},
		{"threshold=-0.1", detect.Options{}, false, false, "threshold"},
		{"threshold=0", detect.Options{}, false, false, "threshold"},
		{"threshold=1", detect.Options{Threshold: 1, MaxFrames: 300, MaxFaces: 16, InlinePNG: true}, false, true, ""},
		{"every=0", detect.Options{}, false, false, "every"},
		{"max_frames=x", detect.Options{}, false, false, "max_frames"},
		{"max_faces=999", detect.Options{}, false, false, "max_faces"},
		{"aligned=2", detect.Options{}, false, false, "aligned"},
	} {
		q, _ := url.ParseQuery(tc.query)
		opts, inline, heat, err := s.options(q)
		if tc.wantErr != "" {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != 400 || !strings.Contains(ae.msg, tc.wantErr) {
				t.Errorf("%q: error %v, want a 400 naming %s", tc.query, err, tc.wantErr)
			}
			continue
		}
		if err != nil || opts != tc.want || inline != tc.inline || heat != tc.heat {
			t.Errorf("%q: %+v inline %v heatmaps %v err %v; want %+v %v %v", tc.query, opts, inline, heat, err, tc.want, tc.inline, tc.heat)
		}
	}
}

func TestGate(t *testing.T) {
	g := newGate(2, 1, 4)
	for i := 0; i < 3; i++ {
		if !g.admit() {
			t.Fatalf("admit %d refused, want 3 tickets", i)
		}
	}
	if g.admit() {
		t.Fatal("a 4th request was admitted")
	}
	ctx := context.Background()
	if err := g.acquire(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.acquire(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.acquire(ctx, 10*time.Millisecond); !errors.Is(err, errBusy) {
		t.Errorf("acquire with both slots taken: %v, want errBusy", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := g.acquire(cctx, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire with a canceled context: %v, want context.Canceled", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.acquire(ctx, 10*time.Second) }()
	waitFor(t, "the waiter", func() bool { _, w, _ := g.load(); return w == 1 })
	g.release()
	if err := <-done; err != nil {
		t.Errorf("waiter: %v", err)
	}
	if r, w, a := g.load(); r != 2 || w != 0 || a != 3 {
		t.Errorf("load %d running %d waiting %d admitted, want 2 0 3", r, w, a)
	}
	g.leave()
	if !g.admit() {
		t.Error("a ticket was returned but admit still refuses")
	}
	if !g.full() {
		t.Error("every ticket taken but full is false")
	}
	for i := 0; i < 4; i++ {
		if !g.startUpload() {
			t.Fatalf("upload %d refused, want 4 places", i)
		}
	}
	if g.startUpload() || g.uploading() != 4 {
		t.Errorf("a 5th upload was let in (%d uploading)", g.uploading())
	}
	g.endUpload()
	if !g.startUpload() {
		t.Error("an upload place was returned but startUpload still refuses")
	}
}

func TestHeatStore(t *testing.T) {
	h := newHeatStore(10, time.Hour)
	a := h.put([]byte("aaaa"))
	b := h.put([]byte("bbbb"))
	if !isToken(a) || !isToken(b) || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
	c := h.put([]byte("cccc")) // 12 bytes > 10: a goes
	if _, ok := h.get(a); ok {
		t.Error("the oldest entry survived eviction")
	}
	for tok, want := range map[string]string{b: "bbbb", c: "cccc"} {
		if got, ok := h.get(tok); !ok || string(got) != want {
			t.Errorf("get(%s) = %q %v, want %q", tok, got, ok, want)
		}
	}
	if tok := h.put(bytes.Repeat([]byte("x"), 11)); tok != "" {
		t.Error("an entry larger than the store was kept")
	}
	short := newHeatStore(100, time.Nanosecond)
	tok := short.put([]byte("x"))
	time.Sleep(time.Millisecond)
	if _, ok := short.get(tok); ok {
		t.Error("an expired entry was served")
	}
	if short.bytes != 0 || short.order.Len() != 0 {
		t.Errorf("expired entries still held: %d bytes, %d entries", short.bytes, short.order.Len())
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("a.png: %w", media.ErrEmpty), 400, "empty"},
		{fmt.Errorf("a.png: %w PNG: x", media.ErrTruncated), 400, "truncated"},
		{fmt.Errorf("a.png: %w", media.ErrCorrupt), 400, "corrupt"},
		{fmt.Errorf("a.png: %w", media.ErrNotImage), 415, "unsupported_media"},
		{fmt.Errorf("a.mp4: %w", media.ErrNotVideo), 415, "unsupported_media"},
		{fmt.Errorf("a.png: %w", media.ErrTooLarge), 413, "too_large"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), 504, "timeout"},
		{context.Canceled, 499, "canceled"},
		{badInput("x", "y"), 400, "x"},
		{&detect.InputError{Input: "a.png", Err: detect.ErrNeedsAligned}, 422, "needs_aligned"},
		{errors.New("boom"), 500, "internal"},
	} {
		ae := classify(tc.err)
		if ae.status != tc.status || ae.code != tc.code {
			t.Errorf("classify(%v) = %d %q, want %d %q", tc.err, ae.status, ae.code, tc.status, tc.code)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{200 << 20: "200 MiB", 64 << 10: "64 KiB", 1 << 30: "1 GiB", 1500000: "1.4 MiB", 1000: "1000 bytes"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
