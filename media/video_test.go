package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// needFFmpeg skips the test when ffmpeg or ffprobe is missing.
func needFFmpeg(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(p); err != nil {
			tb.Skipf("%s not installed (Debian package ffmpeg): %v", p, err)
		}
	}
}

// makeVideo encodes a test-pattern video (ffmpeg's testsrc with a frame
// counter) into dir/name and returns its path.
func makeVideo(tb testing.TB, dir, name string, w, h, frames, fps int, extra ...string) string {
	tb.Helper()
	needFFmpeg(tb)
	p := filepath.Join(dir, name)
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc=size=%dx%d:rate=%d", w, h, fps), "-frames:v", fmt.Sprint(frames)}
	args = append(args, extra...)
	args = append(args, p)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
	return p
}

func readAll(t *testing.T, path string, opts VideoOptions) ([]Frame, error) {
	t.Helper()
	return ReadFrames(path, opts)
}

func indices(fs []Frame) []int {
	var idx []int
	for _, f := range fs {
		idx = append(idx, f.Index)
	}
	return idx
}

func TestProbeVideo(t *testing.T) {
	t.Parallel() // each case waits on ffmpeg processes
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		extra []string
		exact bool
	}{
		{"a.mp4", []string{"-pix_fmt", "yuv420p"}, true},
		{"a.mkv", nil, false},
		{"a.avi", []string{"-c:v", "mpeg4"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := makeVideo(t, dir, tc.name, 160, 120, 12, 25, tc.extra...)
			info, err := ProbeVideo(p)
			if err != nil {
				t.Fatal(err)
			}
			if info.Width != 160 || info.Height != 120 || info.FPS != 25 || info.Frames != 12 || info.FramesExact != tc.exact {
				t.Errorf("info %+v, want 160x120 at 25 fps, 12 frames (exact %v)", info, tc.exact)
			}
			if d := info.Duration - 480*time.Millisecond; d < -40*time.Millisecond || d > 40*time.Millisecond {
				t.Errorf("duration %v, want 480ms", info.Duration)
			}
			if !IsVideo(p) {
				t.Error("IsVideo false")
			}
			fs, err := readAll(t, p, VideoOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; !reflect.DeepEqual(indices(fs), want) {
				t.Errorf("frames %v, want %v", indices(fs), want)
			}
		})
	}
}

func TestVideoSampling(t *testing.T) {
	t.Parallel() // each case waits on ffmpeg processes
	dir := t.TempDir()
	p := makeVideo(t, dir, "s.mp4", 96, 64, 20, 10, "-pix_fmt", "yuv420p")
	all, err := readAll(t, p, VideoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 20 {
		t.Fatalf("%d frames, want 20", len(all))
	}
	for i, f := range all {
		if f.Index != i || f.Time != float64(i)/10 || f.Img.Rect.Dx() != 96 || f.Img.Rect.Dy() != 64 {
			t.Fatalf("frame %d: index %d time %v size %v", i, f.Index, f.Time, f.Img.Rect)
		}
		if f.Img.Pix[3] != 255 {
			t.Fatal("alpha not 255")
		}
	}
	// Each case starts ffprobe and ffmpeg (about a second on a busy
	// 2-core machine): few cases, both ways of skipping for two of them.
	for _, tc := range []struct {
		opts VideoOptions
		want []int
	}{
		{VideoOptions{Every: 3}, []int{0, 3, 6, 9, 12, 15, 18}},
		{VideoOptions{Every: 3, skipInGo: true}, []int{0, 3, 6, 9, 12, 15, 18}},
		{VideoOptions{Count: 4}, []int{0, 6, 12, 19}},
		{VideoOptions{Count: 4, skipInGo: true}, []int{0, 6, 12, 19}},
		{VideoOptions{Count: 30}, nil},
		{VideoOptions{Count: 2, Every: 5}, []int{0, 19}}, // Count wins
	} {
		if tc.want == nil {
			tc.want = indices(all)
		}
		{
			t.Run(fmt.Sprintf("every%d_count%d_go%v", tc.opts.Every, tc.opts.Count, tc.opts.skipInGo), func(t *testing.T) {
				o := tc.opts
				fs, err := readAll(t, p, o)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(indices(fs), tc.want) {
					t.Fatalf("frames %v, want %v", indices(fs), tc.want)
				}
				// The pixels are those of the same frames read in full.
				for _, f := range fs {
					if !bytes.Equal(f.Img.Pix, all[f.Index].Img.Pix) {
						t.Errorf("frame %d differs from the same frame read in full", f.Index)
					}
				}
			})
		}
	}
}

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		total, count int
		want         []int
	}{
		{10, 4, []int{0, 3, 6, 9}},
		{10, 3, []int{0, 4, 9}},
		{5, 5, []int{0, 1, 2, 3, 4}},
		{3, 8, []int{0, 1, 2}},
		{7, 1, []int{0}},
		{300, 2, []int{0, 299}},
	} {
		if got := spread(tc.total, tc.count); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("spread(%d, %d) = %v, want %v", tc.total, tc.count, got, tc.want)
		}
	}
}

func TestVideoTruncated(t *testing.T) {
	t.Parallel() // each case waits on ffmpeg processes
	dir := t.TempDir()
	for _, tc := range []struct {
		name      string
		extra     []string
		minFrames int
	}{
		{"t.mkv", nil, 1},
		{"t.mp4", []string{"-pix_fmt", "yuv420p", "-movflags", "+faststart"}, 1},
		{"t.avi", []string{"-c:v", "mpeg4"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := makeVideo(t, dir, "full_"+tc.name, 160, 120, 40, 25, tc.extra...)
			b, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, b[:len(b)*6/10], 0o644); err != nil {
				t.Fatal(err)
			}
			fs, err := ReadFrames(p, VideoOptions{})
			if err == nil {
				t.Fatalf("read %d frames without error", len(fs))
			}
			if len(fs) < tc.minFrames || len(fs) >= 40 {
				t.Errorf("kept %d frames, want some but not all 40", len(fs))
			}
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %q wraps neither ErrTruncated nor ErrCorrupt", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.name+": ") || !strings.Contains(msg, fmt.Sprintf("after %d frames", len(fs))) {
				t.Errorf("error %q should name the file and the %d frames read", msg, len(fs))
			}
			for i, f := range fs {
				if f.Index != i {
					t.Errorf("kept frame %d has index %d", i, f.Index)
				}
			}
		})
	}
}

// TestVideoTruncatedCountsDecoded: the error of a truncated video counts
// the frames ffmpeg decoded, not those it sent after sampling.
func TestVideoTruncatedCountsDecoded(t *testing.T) {
	t.Parallel() // waits on ffmpeg processes
	dir := t.TempDir()
	full := makeVideo(t, dir, "full.mkv", 160, 120, 40, 10, "-vf", "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast")
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "half.mkv")
	if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := ReadFrames(p, VideoOptions{Every: 1})
	if err == nil || len(all) == 0 || len(all) >= 40 {
		t.Fatalf("every frame: %d frames, %v; want some and an error", len(all), err)
	}
	want := fmt.Sprintf("(%d of about 40 decoded)", len(all))
	if !strings.Contains(err.Error(), want) {
		t.Errorf("every frame: %q, want %q", err, want)
	}
	for _, opts := range []VideoOptions{{Every: 5}, {Count: 4}, {Every: 5, skipInGo: true}} {
		fs, err := ReadFrames(p, opts)
		if err == nil || !errors.Is(err, ErrTruncated) {
			t.Fatalf("%+v: %d frames, error %v; want ErrTruncated", opts, len(fs), err)
		}
		if msg := err.Error(); !strings.Contains(msg, want) || !strings.Contains(msg, fmt.Sprintf("after %d frames were read", len(fs))) {
			t.Errorf("%+v: %q, want %q and the %d frames read", opts, msg, want, len(fs))
		}
	}
}

func TestVideoBadFiles(t *testing.T) {
	t.Parallel() // each case waits on ffmpeg processes
	needFFmpeg(t)
	dir := t.TempDir()
	full := makeVideo(t, dir, "moov_at_end.mp4", 64, 48, 10, 25, "-pix_fmt", "yuv420p")
	b, _ := os.ReadFile(full)
	cut := filepath.Join(dir, "cut.mp4")
	os.WriteFile(cut, b[:len(b)/2], 0o644)
	empty := filepath.Join(dir, "empty.mp4")
	os.WriteFile(empty, nil, 0o644)
	text := filepath.Join(dir, "notes.mp4")
	os.WriteFile(text, []byte("these are not frames\n"), 0o644)
	for _, tc := range []struct {
		path string
		is   error
		say  string
	}{
		{cut, ErrTruncated, "cut.mp4: truncated"},
		{empty, ErrEmpty, "empty.mp4: empty file"},
		{text, ErrNotVideo, "notes.mp4: not a video (looks like text)"},
	} {
		_, err := OpenVideo(tc.path, VideoOptions{})
		if !errors.Is(err, tc.is) || !strings.Contains(fmt.Sprint(err), tc.say) {
			t.Errorf("%s: error %v, want %q wrapping %v", filepath.Base(tc.path), err, tc.say, tc.is)
		}
	}
	if _, err := OpenVideo(filepath.Join(dir, "missing.mp4"), VideoOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestVideoLimits(t *testing.T) {
	t.Parallel() // each case waits on ffmpeg processes
	dir := t.TempDir()
	p := makeVideo(t, dir, "l.mkv", 160, 120, 20, 10)
	for _, tc := range []struct {
		opts VideoOptions
		say  string
	}{
		{VideoOptions{Limits: Limits{MaxPixels: 160*120 - 1}}, "too large: 160x120"},
		{VideoOptions{Limits: Limits{MaxDuration: time.Second}}, "lasts 2s, the limit is 1s"},
		{VideoOptions{Limits: Limits{MaxFrames: 5}}, "sampling gives 20 frames, the limit is 5"},
		{VideoOptions{Every: 2, Limits: Limits{MaxFrames: 9}}, "sampling gives 10 frames, the limit is 9"},
	} {
		_, err := OpenVideo(p, tc.opts)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(fmt.Sprint(err), tc.say) {
			t.Errorf("%+v: error %v, want %q", tc.opts.Limits, err, tc.say)
		}
	}
	// Within the limits, and exactly at the frame limit.
	if fs, err := ReadFrames(p, VideoOptions{Every: 2, Limits: Limits{MaxFrames: 10}}); err != nil || len(fs) != 10 {
		t.Errorf("at the limit: %d frames, %v", len(fs), err)
	}
}

func TestVideoRotation(t *testing.T) {
	t.Parallel() // each case waits on ffmpeg processes
	dir := t.TempDir()
	src := makeVideo(t, dir, "src.mp4", 64, 48, 3, 25, "-pix_fmt", "yuv420p")
	p := filepath.Join(dir, "rot.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", src, "-c", "copy", "-metadata:s:v", "rotate=90", p).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	info, err := ProbeVideo(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 48 || info.Height != 64 || (info.Rotation != 90 && info.Rotation != -90 && info.Rotation != 270) {
		t.Errorf("info %+v, want 48x64 rotated by 90", info)
	}
	fs, err := ReadFrames(p, VideoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 3 || fs[0].Img.Rect.Dx() != 48 || fs[0].Img.Rect.Dy() != 64 {
		t.Errorf("%d frames of %v, want 3 of 48x64", len(fs), fs[0].Img.Rect)
	}
}

func TestVideoCloseStopsFFmpeg(t *testing.T) {
	t.Parallel() // each case waits on ffmpeg processes
	dir := t.TempDir()
	p := makeVideo(t, dir, "c.mkv", 320, 240, 200, 25)
	v, err := OpenVideo(p, VideoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Next(); err != nil {
		t.Fatal(err)
	}
	cmd := v.cmd
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if cmd.ProcessState == nil {
		t.Fatal("ffmpeg still running after Close")
	}
	if _, err := v.Next(); err == nil || err == io.EOF {
		t.Errorf("Next after Close: %v, want an error", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestIsVideo(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mp4 := append([]byte("\x00\x00\x00\x18ftypisom"), make([]byte, 32)...)
	for _, tc := range []struct {
		path string
		want bool
	}{
		{write("a.mp4", mp4), true},
		{write("noext", mp4), true},
		{write("renamed.jpg", mp4), true},
		{write("b.mkv", []byte{0x1A, 0x45, 0xDF, 0xA3, 0, 0}), true},
		{write("c.avi", []byte("RIFF\x00\x00\x00\x00AVI LIST")), true},
		{write("photo.mp4", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0}), false}, // a JPEG, whatever its name
		{write("x.png", []byte("\x89PNG\r\n\x1a\n")), false},
		{write("notes.txt", []byte("hello")), false},
		{write("heic.mp4", []byte("\x00\x00\x00\x18ftypheic\x00\x00")), false},
		{filepath.Join(dir, "missing.mov"), true}, // by extension
		{filepath.Join(dir, "missing.png"), false},
	} {
		if got := IsVideo(tc.path); got != tc.want {
			t.Errorf("IsVideo(%s) = %v, want %v", filepath.Base(tc.path), got, tc.want)
		}
	}
}
