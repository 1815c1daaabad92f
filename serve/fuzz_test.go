package serve

import (
	"bytes"
	"encoding/json"
	"image/color"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
)

// FuzzDetectUpload posts arbitrary bytes to POST /v1/detect, as a raw body
// or as a multipart file, through the real sniffing, spooling and image
// decoding (videos are spooled but not probed, for speed): the handler must never panic,
// always answer 200 or a 4xx with the JSON of its status, and leave no
// temporary file behind.
func FuzzDetectUpload(f *testing.F) {
	png := pngBytes(f, 6, 5, color.RGBA{120, 30, 200, 255})
	seeds := [][]byte{
		nil,
		[]byte("plain text, not an image"),
		png,
		png[:len(png)/2],
		pngHeader(50000, 50000),
		pngHeader(0, 7),
		{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'},
		[]byte("GIF89a\x01\x00\x01\x00"),
		[]byte("RIFF\x10\x00\x00\x00WEBPVP8 "),
		[]byte("BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00"),
		[]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"),
		{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81},
		[]byte("%PDF-1.7"),
	}
	for i, s := range seeds {
		f.Add(s, "seed.png", i%2 == 0)
	}
	f.Add([]byte{0, 0, 0, 1}, "clip.h264", false)
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nzz\r\n--x--\r\n"), "a.png", false)

	spool := f.TempDir()
	s := New(&fakeAnalyzer{noProbe: true}, Config{TempDir: spool, MaxUploadBytes: 1 << 20})
	h := s.Handler()
	f.Fuzz(func(t *testing.T, data []byte, name string, multi bool) {
		var req *http.Request
		if multi {
			body, ct := multipartBody(nil, fileArg{name, data})
			req = httptest.NewRequest("POST", "/v1/detect", body)
			req.Header.Set("Content-Type", ct)
		} else {
			req = httptest.NewRequest("POST", "/v1/detect?name="+url.QueryEscape(name), bytes.NewReader(data))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=x") // sometimes right
			if len(data) > 0 && data[0]&1 == 1 {
				req.Header.Set("Content-Type", "application/octet-stream")
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			var r Response
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || len(r.Results) != 1 {
				t.Fatalf("200 with a bad body (%v): %s", err, rec.Body.Bytes())
			}
		case 400, 413, 415:
			var e ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code == "" {
				t.Fatalf("%d with a bad body (%v): %s", rec.Code, err, rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for %d bytes named %q: %s", rec.Code, len(data), name, rec.Body.Bytes())
		}
		if left, _ := os.ReadDir(spool); len(left) != 0 {
			t.Fatalf("%d temporary file(s) left behind", len(left))
		}
	})
}
