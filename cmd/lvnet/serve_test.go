package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/detect"
)

// lockedBuffer is a bytes.Buffer safe for the server's log writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestServeFlags(t *testing.T) {
	t.Setenv(detect.ModelEnv, filepath.Join(t.TempDir(), "absent.safetensors"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no model: $" + detect.ModelEnv},
		{[]string{"--model", "m.safetensors", "extra"}, "unexpected arguments"},
		{[]string{"--model", "m.safetensors", "--threshold", "0"}, "--threshold"},
		{[]string{"--model", "m.safetensors", "--max-upload", "0"}, "--max-upload"},
		{[]string{"--model", "m.safetensors", "--queue", "-1"}, "--queue"},
		{[]string{"--model", "m.safetensors", "--timeout", "0s"}, "must be positive"},
		{[]string{"--model", "m.safetensors", "--device", "tpu"}, "--device"},
		{[]string{"--model", "m.safetensors", "--nope"}, "nope"},
	} {
		err := serveMain(context.Background(), tc.args, io.Discard, nil)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %q: %v, want a usage error about %s", tc.args, err, tc.want)
		}
	}
	err := serveMain(context.Background(), []string{"--model", "/nonexistent/m.safetensors"}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/m.safetensors") {
		t.Errorf("missing model: %v, want an error naming it", err)
	}
}

// TestServeCommand runs `lvnet serve` on a free loopback port with a small
// checkpoint, analyses an upload, and stops it as SIGINT would.
func TestServeCommand(t *testing.T) {
	path := saveSmallModel(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var logs lockedBuffer
	go func() {
		done <- serveMain(ctx, []string{"--model", path, "--addr", "127.0.0.1:0", "--aligned", "--threshold", "0.4"}, &logs, func(a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start listening")
	}

	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status    string         `json:"status"`
		Threshold float64        `json:"threshold"`
		Aligned   bool           `json:"aligned"`
		Model     map[string]any `json:"model"`
	}
	json.NewDecoder(res.Body).Decode(&h)
	res.Body.Close()
	if h.Status != "ok" || h.Threshold != 0.4 || !h.Aligned || h.Model["name"] != "small.safetensors" || h.Model["image_size"] != 64.0 {
		t.Errorf("healthz %+v", h)
	}

	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	var buf bytes.Buffer
	png.Encode(&buf, img)
	res, err = http.Post(base+"/v1/detect?name=face.png", "image/png", &buf)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Results []struct {
			Input string  `json:"input"`
			Kind  string  `json:"kind"`
			PFake float64 `json:"p_fake"`
			Label string  `json:"label"`
		} `json:"results"`
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if err := json.Unmarshal(body, &out); err != nil || res.StatusCode != 200 || len(out.Results) != 1 {
		t.Fatalf("detect: %d %s", res.StatusCode, body)
	}
	r := out.Results[0]
	wantLabel := map[bool]string{true: "fake", false: "real"}[r.PFake >= 0.4]
	if r.Input != "face.png" || r.Kind != "face" || r.PFake < 0 || r.PFake > 1 || r.Label != wantLabel {
		t.Errorf("result %+v, want face.png, a face, label %s", r, wantLabel)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	l := logs.String()
	if !strings.Contains(l, "lvnet serve: http://127.0.0.1:") || !strings.Contains(l, "path=/v1/detect status=200") || !strings.Contains(l, "stopped after") {
		t.Errorf("log lacks the address, the request or the stop:\n%s", l)
	}
}
