package detect

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
)

// BenchmarkAnalyzeAligned measures the aligned-crop path end to end (PNG
// decoding, resizing 256 -> model size, batched forward) in images per
// second, on the small test model and on the paper's network.
func BenchmarkAnalyzeAligned(b *testing.B) {
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
		{"paper299", func() *model.LVNet {
			cfg := model.Paper()
			cfg.SSPSL = false
			m, err := model.New(cfg, 1)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(m.Free)
			return m
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, err := NewPipeline(c.m(), PipelineOptions{BatchSize: 8})
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
