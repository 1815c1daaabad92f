package face

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/internal/shared"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/torch"
)

// clip720 encodes a 1280x720 H.264 clip of n frames from the FaceForensics++
// example frame (scaled to 960x720 and centred on black).
func clip720(b *testing.B, n int) string {
	b.Helper()
	src := shared.Path(b, "data", "ffpp-examples", "ex_original.png")
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("ffmpeg not installed")
	}
	p := filepath.Join(b.TempDir(), "clip720.mp4")
	cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", src,
		"-vf", "scale=960:720,pad=1280:720:160:0", "-frames:v", fmt.Sprint(n), "-r", "30",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", p)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	return p
}

// BenchmarkEndToEnd720p measures decode + detect + landmarks + crop on every
// frame of a 720p video (frames/s is the figure to read), with the default
// options and with a smaller detector input.
func BenchmarkEndToEnd720p(b *testing.B) {
	torch.KeepFreedMemory() // as the lvnet command does
	// 4 s at 30 fps: long enough that starting ffprobe and ffmpeg (about
	// a second of CPU) is not most of the cost.
	clip := clip720(b, 120)
	for _, o := range []Options{{}, {InputSize: 352}} {
		b.Run(fmt.Sprintf("input%d", o.InputSize), func(b *testing.B) {
			d := detector(b, o)
			// Warm up libtorch's kernels for these shapes.
			fs, err := media.ReadFrames(clip, media.VideoOptions{Count: 1})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d.Detect(fs[0].Img); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu0 := cpuTime()
			frames, found := 0, 0
			for i := 0; i < b.N; i++ {
				v, err := media.OpenVideo(clip, media.VideoOptions{})
				if err != nil {
					b.Fatal(err)
				}
				for {
					f, err := v.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					faces, err := d.Detect(f.Img)
					if err != nil {
						b.Fatal(err)
					}
					for _, fc := range faces {
						Crop(f.Img, fc, CropOptions{})
					}
					frames++
					found += min(len(faces), 1)
				}
				v.Close()
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(found)/float64(frames), "found")
			// CPU seconds of this process and of ffmpeg per frame: on a
			// busy shared machine wall time says little, CPU time bounds
			// what 2 free cores give (between 1 and 2 cores' worth).
			b.ReportMetric(1000*cpu.Seconds()/float64(frames), "cpu-ms/frame")
		})
	}
}

// cpuTime returns the CPU time (user + system) used so far by this process
// and its waited-for children (ffmpeg).
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// BenchmarkDetect times the detector alone (one pass, with landmarks) on
// one 720p frame at several input sizes, with face-api's square input, and
// with contiguous NCHW instead of channels-last tensors.
func BenchmarkDetect(b *testing.B) {
	torch.KeepFreedMemory()
	clip := clip720(b, 1)
	fs, err := media.ReadFrames(clip, media.VideoOptions{})
	if err != nil {
		b.Fatal(err)
	}
	img := fs[0].Img
	for _, bc := range []struct {
		o    Options
		nchw bool
	}{
		{Options{InputSize: 512, SquareInput: true}, false},
		{Options{InputSize: 512}, false},
		{Options{InputSize: 512}, true},
		{Options{InputSize: 416}, false},
		{Options{InputSize: 416}, true},
		{Options{InputSize: 320}, false},
		{Options{InputSize: 416, NoLandmarks: true}, false},
	} {
		o := bc.o
		o.NoRetry = true
		b.Run(fmt.Sprintf("input%d_square%v_nolm%v_nchw%v", o.InputSize, o.SquareInput, o.NoLandmarks, bc.nchw), func(b *testing.B) {
			d := *detector(b, o)
			d.nchw = bc.nchw
			for i := -1; i < b.N; i++ {
				if i == 0 {
					b.ResetTimer() // after a warm-up
				}
				if _, err := d.Detect(img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
