package detect

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/train"
)

// BenchmarkAnalyzeAligned measures the aligned-crop path end to end (PNG
// decoding, resizing 256 -> model size, batched forward) in images per
// second, on the small test model and on the paper's network, at batch
// sizes 1, 4 and 8.
func BenchmarkAnalyzeAligned(b *testing.B) {
	torch.KeepFreedMemory() // as the lvnet command does
	dir := b.TempDir()
	const n = 16
	ins := make([]Input, n)
	for i := range ins {
		p := filepath.Join(dir, fmt.Sprintf("face%02d.png", i))
		writePNG(b, p, noiseImage(256, 256, uint64(i)))
		ins[i] = Input{Path: p}
	}
	for _, c := range []struct {
		name string
		m    func() *model.LVNet
	}{
		{"small64", func() *model.LVNet { return testModel(b) }},
		{"default96", func() *model.LVNet { return preparedModel(b, defaultModelConfig(b)) }},
		{"paper299", func() *model.LVNet {
			cfg := model.Paper()
			cfg.SSPSL = false
			return preparedModel(b, cfg)
		}},
	} {
		for _, bs := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("%s/batch%d", c.name, bs), func(b *testing.B) {
				p, err := NewPipeline(c.m(), PipelineOptions{BatchSize: bs})
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					err := p.AnalyzeAll(context.Background(), ins, Options{Aligned: true}, func(i int, _ *Result, err error) {
						if err != nil {
							b.Error(err)
						}
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "img/s")
			})
		}
	}
}

// BenchmarkPreprocess measures decoding-side preparation of one 256x256
// crop for a 299 model.
func BenchmarkPreprocess(b *testing.B) {
	img := noiseImage(256, 256, 1)
	for range b.N {
		s := torch.NewScope()
		if err := Preprocess(s, img, 299).Err(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkAnalyzeVideo720p analyses a 4-second 1280x720 clip of the
// FaceForensics++ example frame (one face) end to end: ffmpeg decoding,
// face detection, tracking, crops and the model, at the default sampling
// (2 frames per second) and at every frame, with the paper's network at
// 299 pixels and the smoke preset's (96 pixels, an eighth of the
// channels), at batch 1 and 8. It reports analysed frames per second and
// the process's peak RSS so far (docs/DETECT.md has the numbers).
func BenchmarkAnalyzeVideo720p(b *testing.B) {
	torch.KeepFreedMemory() // as the lvnet command does
	src, ok := sharedFile("data", "ffpp-examples", "ex_original.png")
	if !ok {
		b.Skip("../shared/data/ffpp-examples not present")
	}
	needFFmpeg(b)
	clip := filepath.Join(b.TempDir(), "clip720.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", src,
		"-vf", "scale=960:720,pad=1280:720:160:0,noise=alls=8:allf=t", "-frames:v", "120", "-r", "30",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", clip).CombinedOutput()
	if err != nil {
		b.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	det := realDetector(b)
	for _, size := range []string{"smoke96", "default96", "paper299"} {
		cfg := model.Paper()
		cfg.SSPSL = false
		switch size {
		case "smoke96":
			cfg.ImageSize, cfg.Width = 96, 0.125
		case "default96":
			cfg = defaultModelConfig(b)
		}
		m, err := model.New(cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.PrepareInference(model.InferenceOptions{ChannelsLast: true}); err != nil {
			b.Fatal(err)
		}
		for _, every := range []int{0, 1} {
			for _, batch := range []int{1, 8} {
				if size == "paper299" && every == 1 {
					continue // minutes per run on 2 cores
				}
				b.Run(fmt.Sprintf("%s/every%d/batch%d", size, every, batch), func(b *testing.B) {
					p, err := NewPipeline(m, PipelineOptions{BatchSize: batch, Faces: det})
					if err != nil {
						b.Fatal(err)
					}
					frames := 0
					for range b.N {
						r, err := p.Analyze(context.Background(), Input{Path: clip}, Options{Every: every})
						if err != nil {
							b.Fatal(err)
						}
						frames += r.Video.Frames
					}
					b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
					var ru syscall.Rusage
					syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
					b.ReportMetric(float64(ru.Maxrss)/(1<<20), "peak-GB")
				})
			}
		}
		m.Free()
	}
}

// defaultModelConfig is the configuration of the shipped model (the
// training preset "default").
func defaultModelConfig(b *testing.B) model.Config {
	c, err := train.Preset("default")
	if err != nil {
		b.Fatal(err)
	}
	return c.Model
}

// preparedModel is a model of cfg prepared for CPU inference as lvnet
// detect prepares it.
func preparedModel(b *testing.B, cfg model.Config) *model.LVNet {
	m, err := model.New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Free)
	if err := m.PrepareInference(model.InferenceOptions{ChannelsLast: true}); err != nil {
		b.Fatal(err)
	}
	return m
}
