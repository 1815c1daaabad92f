package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var docImage = flag.Bool("docimg", false, "write docs/img/serve.png: a screenshot of the web page in Chromium")

// chromeFlags are the flags Chromium runs with in the page test.
var chromeFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--window-size=1280,1080", "--hide-scrollbars",
	"--force-device-scale-factor=1",
}

// webDriver is a minimal W3C WebDriver client for chromedriver.
type webDriver struct {
	base    string // chromedriver's URL
	session string
	client  *http.Client
}

// startWebDriver starts chromedriver on a free loopback port and opens a
// headless Chromium session, skipping the test when either is missing.
// Both stop when the test ends.
func startWebDriver(t *testing.T) *webDriver {
	t.Helper()
	driver, err := exec.LookPath("chromedriver")
	if err != nil {
		t.Skip("chromedriver not installed (Debian packages chromium and chromium-driver): skipping the browser test")
	}
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("chromium not installed (Debian package chromium): skipping the browser test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	d := &webDriver{base: fmt.Sprintf("http://127.0.0.1:%d", port), client: &http.Client{Timeout: 60 * time.Second}}
	ready := false
	for i := 0; i < 100 && !ready; i++ {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := d.call("GET", "/status", nil, &st); err == nil && st.Ready {
			ready = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !ready {
		t.Fatalf("chromedriver did not become ready: %s", logs.String())
	}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"goog:chromeOptions": map[string]any{
			"binary": browser,
			"args":   append(chromeFlags, "--user-data-dir="+t.TempDir()),
		},
	}}}
	if err := d.call("POST", "/session", caps, &sess); err != nil {
		t.Fatalf("new session: %v", err)
	}
	d.session = "/session/" + sess.SessionID
	t.Cleanup(func() { d.call("DELETE", d.session, nil, nil) })
	return d
}

// call sends one WebDriver command and decodes its "value" into out.
func (d *webDriver) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(res.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: %d: %w", method, path, res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		json.Unmarshal(env.Value, &e)
		return fmt.Errorf("%s %s: %d %s: %s", method, path, res.StatusCode, e.Error, firstLine(e.Message))
	}
	if out != nil {
		return json.Unmarshal(env.Value, out)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// script runs JavaScript in the page and returns its result.
func (d *webDriver) script(t *testing.T, js string, out any) {
	t.Helper()
	if err := d.call("POST", d.session+"/execute/sync", map[string]any{"script": js, "args": []any{}}, out); err != nil {
		t.Fatalf("script %q: %v", js, err)
	}
}

// upload hands a file to the page's file input, as a user picking it.
func (d *webDriver) upload(t *testing.T, path string) {
	t.Helper()
	var el map[string]string
	if err := d.call("POST", d.session+"/element", map[string]string{"using": "css selector", "value": "#file"}, &el); err != nil {
		t.Fatalf("find the file input: %v", err)
	}
	id := el["element-6066-11e4-a52e-4f735466cecf"]
	if err := d.call("POST", d.session+"/element/"+id+"/value", map[string]string{"text": path}, nil); err != nil {
		t.Fatalf("send the file: %v", err)
	}
}

// verdict waits (at most 30 s) for the page to finish an analysis and
// returns the state ("done" or "error") and the verdict's text.
func (d *webDriver) verdict(t *testing.T) (state, text string) {
	t.Helper()
	for i := 0; i < 300; i++ {
		d.script(t, `return document.getElementById("verdict").dataset.state`, &state)
		if state == "done" || state == "error" {
			d.script(t, `return document.getElementById("verdict").innerText`, &text)
			return state, text
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the page did not show a verdict in 30 s (state %q)", state)
	return
}

// portrait draws a stylised face: a skin-coloured oval with eyes and a
// mouth on a blue-grey background, the lower half of the face redder.
func portrait(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy := float64(w)/2, float64(h)*0.48
	rx, ry := float64(w)*0.3, float64(h)*0.4
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x), float64(y)
			bg := color.RGBA{uint8(120 + 30*fy/float64(h)), uint8(125 + 20*fy/float64(h)), 140, 255}
			c := bg
			dx, dy := (fx-cx)/rx, (fy-cy)/ry
			if dx*dx+dy*dy <= 1 {
				shade := 1 - 0.15*math.Hypot(dx, dy)
				c = color.RGBA{uint8(225 * shade), uint8(180 * shade), uint8(150 * shade), 255}
				if fy > cy+0.1*ry {
					c.R = uint8(min(255, float64(c.R)+25))
					c.G = uint8(float64(c.G) * 0.85)
				}
			}
			for _, ex := range []float64{cx - 0.42*rx, cx + 0.42*rx} {
				if math.Hypot((fx-ex)/(0.16*rx), (fy-(cy-0.2*ry))/(0.07*ry)) <= 1 {
					c = color.RGBA{40, 35, 35, 255}
				}
			}
			if math.Hypot((fx-cx)/(0.38*rx), (fy-(cy+0.5*ry))/(0.07*ry)) <= 1 {
				c = color.RGBA{170, 60, 70, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// TestPageInChromium drives the web page in headless Chromium through
// chromedriver: it uploads a photo with the file picker and reads the
// verdict, then a text file and reads the error, then (with ffmpeg) a
// video and checks the per-frame chart; it keeps a screenshot of the photo's
// result (docs/img/serve.png with -docimg).
func TestPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the browser test")
	}
	d := startWebDriver(t)
	fake := &fakeAnalyzer{grid: 19}
	_, base := startServer(t, fake, Config{ModelInfo: map[string]any{"name": "lvnet (test double)"}})
	dir := t.TempDir()

	if err := d.call("POST", d.session+"/url", map[string]string{"url": base + "/"}, nil); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	var title string
	d.script(t, `return document.title`, &title)
	if !strings.Contains(title, "LVNet") {
		t.Fatalf("page title %q", title)
	}

	// A text file renamed .jpg: the page shows the server's error.
	notes := filepath.Join(dir, "notes.jpg")
	if err := os.WriteFile(notes, []byte("not a picture at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.upload(t, notes)
	if state, text := d.verdict(t); state != "error" || !strings.Contains(text, "notes.jpg: not an image or a video (looks like text)") || !strings.Contains(text, "415") {
		t.Errorf("text file: state %q, text %q", state, text)
	}

	// A video: per-frame chart with one line and a dot per frame.
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		clip := makeVideo(t, dir, 8)
		d.upload(t, clip)
		if state, text := d.verdict(t); state != "done" || !strings.Contains(text, "FAKE") || !strings.Contains(text, "0.500") {
			t.Errorf("video: state %q, text %q; want FAKE 0.500", state, text)
		}
		var n []int
		d.script(t, `const c = document.getElementById("chart");
			return [getComputedStyle(c).display === "none" ? 0 : 1, c.querySelectorAll("polyline").length, c.querySelectorAll("circle").length]`, &n)
		if len(n) != 3 || n[0] != 1 || n[1] != 1 || n[2] != 8 {
			t.Errorf("chart shown %v", n)
		}
	}

	// A photo: the verdict and p_fake the API computed, the overlay and the
	// faces table.
	img := portrait(480, 400)
	photo := filepath.Join(dir, "portrait.png")
	var buf bytes.Buffer
	png.Encode(&buf, img)
	if err := os.WriteFile(photo, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var red float64
	for i := 0; i < len(img.Pix); i += 4 {
		red += float64(img.Pix[i])
	}
	p := red / float64(480*400) / 255
	want := "REAL"
	if p >= 0.5 {
		want = "FAKE"
	}
	d.upload(t, photo)
	state, text := d.verdict(t)
	if state != "done" || !strings.HasPrefix(text, want) || !strings.Contains(text, fmt.Sprintf("%.3f", p)) || !strings.Contains(text, "portrait.png") {
		t.Errorf("photo: state %q, text %q; want %s with p_fake %.3f", state, text, want, p)
	}
	var shown []int
	d.script(t, `return [
		[...document.querySelectorAll("#heatmap-row img")].filter(i => i.complete && i.naturalWidth > 0).length,
		document.querySelectorAll("#heatmap-row rect").length,
		document.querySelectorAll("#faces-body tr").length]`, &shown)
	if len(shown) != 3 || shown[0] != 1 || shown[1] != 19*19 || shown[2] != 1 {
		t.Errorf("shown: %v overlay images, patch cells, face rows; want 1, 361, 1", shown)
	}

	var shot string
	if err := d.call("GET", d.session+"/screenshot", nil, &shot); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	pngData, err := base64.StdEncoding.DecodeString(shot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.DecodeConfig(bytes.NewReader(pngData)); err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	out := filepath.Join(t.TempDir(), "serve.png")
	if *docImage {
		out = filepath.Join("..", "docs", "img", "serve.png")
	}
	if err := writeFileAtomic(out, pngData); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot in %s", out)
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder and a rename.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*"+filepath.Ext(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
