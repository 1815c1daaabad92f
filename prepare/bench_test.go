package prepare

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"path/filepath"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

// BenchmarkPrepare runs the whole pipeline (decode, detect, track, crop,
// write PNGs, index) on two 12-frame 640x480 clips of the FaceForensics++
// example frame, for worker and batch settings; it reports frames/s.
func BenchmarkPrepare(b *testing.B) {
	ex := shared.Path(b, "data", "ffpp-examples", "ex_original.png")
	dir := b.TempDir()
	for _, name := range []string{"a.mp4", "b.mp4"} {
		ffmpegVideo(b, filepath.Join(dir, "real", name), ex, 12, 640, 480)
	}
	det := realDetector(b)
	for _, c := range []struct{ workers, batch int }{{1, 1}, {1, 4}, {2, 1}, {2, 4}} {
		b.Run(fmt.Sprintf("workers=%d/batch=%d", c.workers, c.batch), func(b *testing.B) {
			frames := 0
			for i := 0; i < b.N; i++ {
				o := Options{Out: filepath.Join(b.TempDir(), "out"), Workers: c.workers, BatchFrames: c.batch, Detector: det, Log: io.Discard}
				st, err := Run(context.Background(), []string{filepath.Join(dir, "real")}, o)
				if err != nil {
					b.Fatal(err)
				}
				frames += st.Frames
			}
			b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkPNG compares the PNG compression levels for a 299x299 crop.
func BenchmarkPNG(b *testing.B) {
	img := readRGBA(b, shared.Path(b, "data", "ffpp-examples", "ex_original.png"))
	crop := img.SubImage(image.Rect(240, 20, 539, 319))
	for _, lvl := range []png.CompressionLevel{png.BestSpeed, png.DefaultCompression} {
		b.Run(fmt.Sprint(lvl), func(b *testing.B) {
			var n int
			for i := 0; i < b.N; i++ {
				var c countWriter
				enc := png.Encoder{CompressionLevel: lvl}
				if err := enc.Encode(&c, crop); err != nil {
					b.Fatal(err)
				}
				n = int(c)
			}
			b.ReportMetric(float64(n)/1024, "KiB")
		})
	}
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
