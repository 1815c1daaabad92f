package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"
)

// slowClient is an upload sent by hand over a loopback connection: the
// headers of POST /v1/detect for a body of size bytes, then the body as
// the test sends it.
type slowClient struct {
	c  net.Conn
	br *bufio.Reader
}

// startSlowClient connects to the test server at base and sends the
// headers of a raw upload of size bytes and the first bytes of its body.
func startSlowClient(t *testing.T, base string, size int, first []byte) *slowClient {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /v1/detect?name=slow.png HTTP/1.1\r\nHost: %s\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", addr, size)
	c.Write(first)
	return &slowClient{c: c, br: bufio.NewReader(c)}
}

// answer reads the server's answer, waiting at most wait.
func (s *slowClient) answer(t *testing.T, wait time.Duration) (int, ErrorBody) {
	t.Helper()
	s.c.SetReadDeadline(time.Now().Add(wait))
	res, err := http.ReadResponse(s.br, nil)
	if err != nil {
		t.Fatalf("no answer to the slow upload within %v: %v", wait, err)
	}
	defer res.Body.Close()
	var eb ErrorBody
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &eb)
	return res.StatusCode, eb
}

// closed reports whether the server closes the connection within wait.
func (s *slowClient) closed(wait time.Duration) bool {
	s.c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, s.br)
	return err == nil // EOF: closed by the server
}

func health(t *testing.T, base string) Health {
	t.Helper()
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var h Health
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestTricklingClientsCannotLockOut: more clients than admission places
// (MaxConcurrent + QueueLen) that send their headers and then a byte now
// and then neither keep a normal request from being served nor hide from
// /healthz, and they are ended at the minimum rate's deadline.
func TestTricklingClientsCannotLockOut(t *testing.T) {
	const places, grace = 1 + 4, 1500 * time.Millisecond
	s, base := startServer(t, &fakeAnalyzer{}, Config{MaxConcurrent: 1, QueueLen: 4, UploadIdleTimeout: grace, MinUploadRate: 1 << 10})
	img := pngBytes(t, 4, 4, color.RGBA{200, 0, 0, 255})
	t0 := time.Now()
	var slow []*slowClient
	for range places + 1 {
		slow = append(slow, startSlowClient(t, base, 1<<20, img[:8]))
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 100 ms each: 10 bytes/s
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, c := range slow {
					c.c.Write([]byte{0})
				}
			}
		}
	}()
	waitFor(t, "the trickling uploads", func() bool { return s.gate.uploading() == places+1 })
	if h := health(t, base); h.Uploading != places+1 || h.Running != 0 || h.Queued != 0 || h.MaxUploads != DefaultMaxUploads {
		t.Errorf("healthz while %d clients trickle: %+v", places+1, h)
	}
	if m := scrape(t, base); m["lvnet_uploads_in_progress"] != places+1 {
		t.Errorf("lvnet_uploads_in_progress %v, want %d", m["lvnet_uploads_in_progress"], places+1)
	}
	a := postFile(t, base, "", "normal.png", img)
	if a.status != http.StatusOK || len(a.resp.Results) != 1 || a.resp.Results[0].Input != "normal.png" {
		t.Fatalf("a normal request while %d clients trickle: %d %s", places+1, a.status, a.body)
	}
	if since := time.Since(t0); since >= grace {
		t.Fatalf("the normal request was served after %v, not while the others trickled (grace %v)", since, grace)
	}
	for i, c := range slow {
		status, eb := c.answer(t, grace+5*time.Second)
		if status != http.StatusRequestTimeout || eb.Code != "upload_too_slow" || !strings.Contains(eb.Error, "the minimum is 1 KiB/s") {
			t.Errorf("trickling client %d: %d %+v, want 408 upload_too_slow", i, status, eb)
		}
	}
	d := time.Since(t0)
	t.Logf("%d trickling clients ended after %v", places+1, d.Round(10*time.Millisecond))
	if d > grace+3*time.Second {
		t.Errorf("trickling clients ended after %v, want about %v", d, grace)
	}
	waitFor(t, "the upload places to be free", func() bool { return s.gate.uploading() == 0 })
}

// TestStalledUpload: a client that sends its headers and a few bytes and
// then nothing is answered 408 after UploadIdleTimeout, and its connection
// closed.
func TestStalledUpload(t *testing.T) {
	const idle = 500 * time.Millisecond
	s, base := startServer(t, &fakeAnalyzer{}, Config{UploadIdleTimeout: idle, MinUploadRate: -1})
	for _, first := range [][]byte{nil, []byte("\x89PNG\r\n\x1a\n")} {
		t0 := time.Now()
		c := startSlowClient(t, base, 1000, first)
		status, eb := c.answer(t, idle+5*time.Second)
		d := time.Since(t0)
		t.Logf("stalled after %d bytes: answered after %v: %d %s", len(first), d.Round(10*time.Millisecond), status, eb.Error)
		if status != http.StatusRequestTimeout || eb.Code != "upload_stalled" || !strings.Contains(eb.Error, fmt.Sprintf("nothing received for %v (after %d bytes)", idle, len(first))) {
			t.Errorf("stalled upload: %d %+v, want 408 upload_stalled", status, eb)
		}
		if d < idle || d > idle+3*time.Second {
			t.Errorf("stalled upload answered after %v, want about %v", d, idle)
		}
		if !c.closed(5 * time.Second) {
			t.Error("the connection of the stalled upload stays open")
		}
	}
	waitFor(t, "the upload places to be free", func() bool { return s.gate.uploading() == 0 })
}

// TestMaxUploads: uploads beyond Config.MaxUploads are answered 503 at
// once; the places come back when the uploads end.
func TestMaxUploads(t *testing.T) {
	s, base := startServer(t, &fakeAnalyzer{}, Config{MaxUploads: 2, UploadIdleTimeout: time.Minute})
	img := pngBytes(t, 2, 2, color.RGBA{A: 255})
	a1 := startSlowClient(t, base, 1000, img[:8])
	a2 := startSlowClient(t, base, 1000, img[:8])
	waitFor(t, "two uploads", func() bool { return s.gate.uploading() == 2 })
	a := postFile(t, base, "", "third.png", img)
	if a.status != http.StatusServiceUnavailable || a.err.Code != "busy" || !strings.Contains(a.err.Error, "too many uploads in progress") || a.header.Get("Retry-After") == "" {
		t.Errorf("third upload: %d %+v, want 503 busy", a.status, a.err)
	}
	a1.c.Close()
	a2.c.Close()
	waitFor(t, "the upload places to be free", func() bool { return s.gate.uploading() == 0 })
	if a := postFile(t, base, "", "fourth.png", img); a.status != http.StatusOK {
		t.Errorf("after the uploads ended: %d %s", a.status, a.body)
	}
}

// TestSlowUploadWithoutDeadlines: through a ResponseWriter without
// deadlines (httptest's recorder) a trickling body is still ended, when
// its reads return late.
func TestSlowUploadWithoutDeadlines(t *testing.T) {
	s := New(&fakeAnalyzer{}, Config{UploadIdleTimeout: 200 * time.Millisecond, MinUploadRate: 1 << 10})
	img := pngBytes(t, 2, 2, color.RGBA{A: 255})
	body := io.MultiReader(bytes.NewReader(img[:8]), &trickle{data: img[8:], every: 20 * time.Millisecond})
	req := httptest.NewRequest("POST", "/v1/detect?name=x.png", body)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusRequestTimeout || !strings.Contains(w.Body.String(), "upload_too_slow") {
		t.Errorf("trickled body: %d %s", w.Code, w.Body)
	}
}

// trickle returns one byte of data per read, every so often.
type trickle struct {
	data  []byte
	every time.Duration
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.every)
	p[0], r.data = r.data[0], r.data[1:]
	return 1, nil
}

// TestLargeImageSpooled: an image larger than what is kept in memory is
// spooled to a temporary file, analysed from it and removed.
func TestLargeImageSpooled(t *testing.T) {
	defer func(m int64) { uploadMemory = m }(uploadMemory)
	uploadMemory = 1 << 10
	tmp := t.TempDir()
	fake := &fakeAnalyzer{}
	_, base := startServer(t, fake, Config{TempDir: tmp})
	img := pngBytes(t, 64, 64, color.RGBA{255, 0, 0, 255})
	noisy := append(img[:len(img):len(img)], make([]byte, 4<<10)...) // trailing bytes after IEND: still the same PNG
	a := postFile(t, base, "", "big.png", noisy)
	if a.status != http.StatusOK || len(a.resp.Results) != 1 || a.resp.Results[0].PFake != 1 || a.resp.Results[0].Input != "big.png" {
		t.Fatalf("large image: %d %s", a.status, a.body)
	}
	fake.mu.Lock()
	seen := append([]string(nil), fake.imageSeen...)
	fake.mu.Unlock()
	if len(seen) != 1 || !strings.HasSuffix(seen[0], ".png") {
		t.Errorf("the analyzer read spooled images %q, want one .png", seen)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("%d temporary files left", len(left))
	}
}

// formBody builds a multipart/form-data body of file parts, each with its
// field name, file name and data, in order.
func formBody(parts ...[3]string) (*bytes.Buffer, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p[0], p[1]))
		h.Set("Content-Type", "application/octet-stream")
		w, _ := mw.CreatePart(h)
		io.WriteString(w, p[2])
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

// TestMultipartFilePartWins: the part named "file" is analysed whatever the
// order of the parts; without one, a single file part is; several are
// refused.
func TestMultipartFilePartWins(t *testing.T) {
	_, base := startServer(t, &fakeAnalyzer{}, Config{})
	good := string(pngBytes(t, 2, 2, color.RGBA{255, 0, 0, 255}))
	text := "these are not pixels\n"
	tests := []struct {
		name   string
		parts  [][3]string
		status int
		code   string // error code, or the input of the result
	}{
		{"file after a bad photo", [][3]string{{"photo", "notes.txt", text}, {"file", "a.png", good}}, 200, "a.png"},
		{"file before a bad photo", [][3]string{{"file", "a.png", good}, {"photo", "notes.txt", text}}, 200, "a.png"},
		{"bad file after a good photo", [][3]string{{"photo", "b.png", good}, {"file", "notes.txt", text}}, 415, "unsupported_media"},
		{"bad file before a good photo", [][3]string{{"file", "notes.txt", text}, {"photo", "b.png", good}}, 415, "unsupported_media"},
		{"file between two others", [][3]string{{"x", "b.png", good}, {"file", "a.png", good}, {"y", "c.png", good}}, 200, "a.png"},
		{"one file part of another name", [][3]string{{"photo", "b.png", good}}, 200, "b.png"},
		{"two file parts", [][3]string{{"file", "a.png", good}, {"file", "b.png", good}}, 400, "too_many_files"},
		{"two other file parts", [][3]string{{"x", "a.png", good}, {"y", "b.png", good}}, 400, "too_many_files"},
		{"two other file parts, the first bad", [][3]string{{"x", "notes.txt", text}, {"y", "b.png", good}}, 400, "too_many_files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := formBody(tc.parts...)
			a := do(t, "POST", base+"/v1/detect", ct, body)
			got := a.err.Code
			if a.status == 200 && len(a.resp.Results) == 1 {
				got = a.resp.Results[0].Input
			}
			if a.status != tc.status || got != tc.code {
				t.Errorf("%d %q, want %d %q (%s)", a.status, got, tc.status, tc.code, a.body)
			}
		})
	}
}
