package media

import (
	"io"
	"testing"
)

// BenchmarkVideoSample compares the two ways of sampling a 720p H.264 clip
// (120 frames): ffmpeg's select filter (the default) against converting
// every frame to RGB and dropping the unwanted ones in Go. Reported per
// clip; frames/s counts the frames yielded.
func BenchmarkVideoSample(b *testing.B) {
	p := makeVideo(b, b.TempDir(), "bench.mp4", 1280, 720, 120, 30, "-pix_fmt", "yuv420p", "-preset", "ultrafast")
	for _, bc := range []struct {
		name string
		opts VideoOptions
	}{
		{"all", VideoOptions{}},
		{"every5_select", VideoOptions{Every: 5}},
		{"every5_go", VideoOptions{Every: 5, skipInGo: true}},
		{"count8_select", VideoOptions{Count: 8}},
		{"count8_go", VideoOptions{Count: 8, skipInGo: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			frames := 0
			for i := 0; i < b.N; i++ {
				v, err := OpenVideo(p, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				for {
					_, err := v.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					frames++
				}
				v.Close()
			}
			b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}
