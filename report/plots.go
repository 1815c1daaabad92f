package report

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/viz"
)

// Curve is one set of scored samples to draw, e.g. frame-level or
// video-level.
type Curve struct {
	Name   string
	Scores []float64
	Labels []int
}

// Plot geometry: PNGs are 7 x 5 inches at plotDPI.
const (
	plotDPI = 110
	plotW   = 7 * vg.Inch
	plotH   = 5 * vg.Inch
)

// palette returns the i-th series colour (the "tab10" colours).
func palette(i int) color.RGBA {
	hex := []uint32{0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e, 0x9467bd, 0x8c564b}[i%6]
	return color.RGBA{uint8(hex >> 16), uint8(hex >> 8), uint8(hex), 0xff}
}

func withAlpha(c color.RGBA, a uint8) color.NRGBA { return color.NRGBA{c.R, c.G, c.B, a} }

// newPlot returns a plot with a title, axis labels and a light grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	for _, f := range []*font.Font{&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font, &p.Legend.TextStyle.Font} {
		f.Variant = "Sans"
	}
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{0xe0}
	g.Horizontal.Color = color.Gray{0xe0}
	p.Add(g)
	return p
}

// line adds a line through xys in colour c with the given width and
// dashes, with a legend entry when name is not empty.
func line(p *plot.Plot, name string, xys plotter.XYs, c color.Color, width vg.Length, dashes ...vg.Length) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, fmt.Errorf("line %q: %w", name, err)
	}
	l.Color = c
	l.Width = width
	l.Dashes = dashes
	p.Add(l)
	if name != "" {
		p.Legend.Add(name, l)
	}
	return l, nil
}

// save renders p into a PNG at path, atomically.
func save(p *plot.Plot, path string, w, h vg.Length) error {
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(plotDPI))
	p.Draw(draw.New(c))
	return viz.WritePNG(path, c.Image())
}

// unitAxes fixes both axes to [0, 1] with a small margin.
func unitAxes(p *plot.Plot) {
	p.X.Min, p.X.Max = -0.01, 1.01
	p.Y.Min, p.Y.Max = -0.01, 1.01
}

// PlotROC draws the ROC curves (false positive rate against true positive
// rate) with their AUC in the legend and the chance diagonal, into a PNG at
// path. Curves holding a single class are skipped; at least one must be
// drawable.
func PlotROC(path string, curves []Curve) error {
	p := newPlot("ROC curve", "false positive rate (reals called fake)", "true positive rate (fakes detected)")
	unitAxes(p)
	if _, err := line(p, "chance", plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}}, color.Gray{0x99}, vg.Points(1), vg.Points(5), vg.Points(4)); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	drawn := 0
	for i, c := range curves {
		fpr, tpr, _, err := metrics.ROC(c.Scores, c.Labels)
		if errors.Is(err, metrics.ErrOneClass) {
			continue
		}
		if err != nil {
			return fmt.Errorf("plot %s: %s: %w", path, c.Name, err)
		}
		auc, err := metrics.AUC(c.Scores, c.Labels)
		if err != nil {
			return fmt.Errorf("plot %s: %s: %w", path, c.Name, err)
		}
		xys := make(plotter.XYs, len(fpr))
		for k := range fpr {
			xys[k] = plotter.XY{X: fpr[k], Y: tpr[k]}
		}
		if _, err := line(p, fmt.Sprintf("%s (AUC %.4f)", c.Name, auc), xys, palette(i), vg.Points(2)); err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("plot %s: %w: no curve has both real and fake samples", path, metrics.ErrOneClass)
	}
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(10), vg.Points(10)
	return save(p, path, 6*vg.Inch, 5.5*vg.Inch)
}

// PlotPR draws the precision-recall curves (step-wise, as average
// precision integrates them) with their AP in the legend and the chance
// level (fraction of fakes) of the first curve, into a PNG at path. Curves
// without fake samples are skipped; at least one must be drawable.
func PlotPR(path string, curves []Curve) error {
	p := newPlot("Precision-recall curve", "recall (fakes detected)", "precision (called fake that are fake)")
	unitAxes(p)
	drawn := 0
	for i, c := range curves {
		prec, rec, _, err := metrics.PR(c.Scores, c.Labels)
		if errors.Is(err, metrics.ErrOneClass) {
			continue
		}
		if err != nil {
			return fmt.Errorf("plot %s: %s: %w", path, c.Name, err)
		}
		ap, err := metrics.AveragePrecision(c.Scores, c.Labels)
		if err != nil {
			return fmt.Errorf("plot %s: %s: %w", path, c.Name, err)
		}
		if drawn == 0 {
			fakes := 0
			for _, l := range c.Labels {
				fakes += l
			}
			base := float64(fakes) / float64(len(c.Labels))
			if _, err := line(p, fmt.Sprintf("chance (%.2f fakes)", base), plotter.XYs{{X: 0, Y: base}, {X: 1, Y: base}}, color.Gray{0x99}, vg.Points(1), vg.Points(5), vg.Points(4)); err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
		}
		xys := make(plotter.XYs, len(prec))
		for k := range prec {
			xys[k] = plotter.XY{X: rec[k], Y: prec[k]}
		}
		l, err := line(p, fmt.Sprintf("%s (AP %.4f)", c.Name, ap), xys, palette(i), vg.Points(2))
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		l.StepStyle = plotter.PostStep
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("plot %s: %w: no curve has fake samples", path, metrics.ErrOneClass)
	}
	p.Legend.Top, p.Legend.Left = false, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(10), vg.Points(10)
	return save(p, path, 6*vg.Inch, 5.5*vg.Inch)
}

// histBins is the number of histogram bins over [0, 1].
const histBins = 40

// PlotHistogram draws the distributions of p_fake for real and fake
// samples (each normalised to fractions of its class, overlaid), with the
// 0.5 decision threshold, into a PNG at path.
func PlotHistogram(path string, scores []float64, labels []int) error {
	if len(scores) != len(labels) || len(scores) == 0 {
		return fmt.Errorf("plot %s: %d scores and %d labels", path, len(scores), len(labels))
	}
	p := newPlot("Scores of real and fake faces", "p(fake)", "fraction of the class")
	var n [2]int
	var w [2][histBins]float64
	for i, s := range scores {
		if math.IsNaN(s) || labels[i] < 0 || labels[i] > 1 {
			return fmt.Errorf("plot %s: sample %d: score %v label %d", path, i, s, labels[i])
		}
		b := min(histBins-1, max(0, int(s*histBins)))
		w[labels[i]][b]++
		n[labels[i]]++
	}
	ymax := 0.0
	for cls, name := range []string{"real", "fake"} {
		if n[cls] == 0 {
			continue
		}
		h := &plotter.Histogram{Width: 1.0 / histBins, FillColor: withAlpha(palette(cls), 110)}
		h.LineStyle = draw.LineStyle{Color: palette(cls), Width: vg.Points(0.8)}
		for b := range histBins {
			v := w[cls][b] / float64(n[cls])
			ymax = math.Max(ymax, v)
			h.Bins = append(h.Bins, plotter.HistogramBin{Min: float64(b) / histBins, Max: float64(b+1) / histBins, Weight: v})
		}
		p.Add(h)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", name, n[cls]), h)
	}
	if _, err := line(p, "threshold 0.5", plotter.XYs{{X: 0.5, Y: 0}, {X: 0.5, Y: ymax * 1.05}}, color.Gray{0x55}, vg.Points(1), vg.Points(5), vg.Points(4)); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	p.X.Min, p.X.Max = 0, 1
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.XOffs = -vg.Points(10)
	return save(p, path, plotW, plotH)
}

// finite returns the points of xys whose Y is a number.
func finite(xys plotter.XYs) plotter.XYs {
	out := xys[:0:0]
	for _, v := range xys {
		if !math.IsNaN(v.Y) && !math.IsInf(v.Y, 0) {
			out = append(out, v)
		}
	}
	return out
}

// smooth returns the trailing moving average of ys over window values.
func smooth(xys plotter.XYs, window int) plotter.XYs {
	out := make(plotter.XYs, len(xys))
	var sum float64
	for i, v := range xys {
		sum += v.Y
		if i >= window {
			sum -= xys[i-window].Y
		}
		out[i] = plotter.XY{X: v.X, Y: sum / float64(min(i+1, window))}
	}
	return out
}

// PlotLoss draws the training losses per logged step into a PNG at path:
// the total loss raw (faint) and smoothed by a trailing moving average over
// 1/40 of the run, and the smoothed classification and segmentation
// losses. The x axis is the logged step number when it increases through
// the whole log, else the position of the line in the log.
func PlotLoss(path string, steps []Step) error {
	increasing := true
	for i := 1; i < len(steps); i++ {
		if steps[i].Step <= steps[i-1].Step {
			increasing = false
			break
		}
	}
	x := func(i int) float64 {
		if increasing && steps[i].Step >= 0 {
			return float64(steps[i].Step)
		}
		return float64(i + 1)
	}
	series := func(f func(Step) float64) plotter.XYs {
		xys := make(plotter.XYs, len(steps))
		for i, s := range steps {
			xys[i] = plotter.XY{X: x(i), Y: f(s)}
		}
		return finite(xys)
	}
	loss := series(func(s Step) float64 { return s.Loss })
	cls := series(func(s Step) float64 { return s.LossCls })
	seg := series(func(s Step) float64 { return s.LossSeg })
	if len(loss)+len(cls)+len(seg) == 0 {
		return fmt.Errorf("plot %s: no loss values in the training log", path)
	}
	xlabel := "training step"
	if !increasing {
		xlabel = "logged step (line of the log)"
	}
	p := newPlot("Training loss", xlabel, "loss")
	window := max(1, max(len(loss), len(cls), len(seg))/40)
	if len(loss) > 0 {
		if _, err := line(p, "", loss, withAlpha(palette(0), 70), vg.Points(0.8)); err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
	}
	for i, s := range []struct {
		name string
		xys  plotter.XYs
	}{{"loss", loss}, {"loss_cls", cls}, {"loss_seg", seg}} {
		if len(s.xys) == 0 {
			continue
		}
		name := s.name
		if window > 1 {
			name += fmt.Sprintf(" (mean of %d)", window)
		}
		if _, err := line(p, name, smooth(s.xys, window), palette([]int{0, 3, 2}[i]), vg.Points(2)); err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
	}
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.XOffs = -vg.Points(10)
	return save(p, path, plotW, plotH)
}

// PlotEpochs draws validation AUC, validation accuracy and training
// accuracy per epoch into a PNG at path. Accuracies logged in percent (any
// value above 1) are divided by 100.
func PlotEpochs(path string, epochs []Epoch) error {
	series := func(f func(Epoch) float64) plotter.XYs {
		xys := make(plotter.XYs, len(epochs))
		for i, e := range epochs {
			xys[i] = plotter.XY{X: float64(e.Epoch), Y: f(e)}
		}
		xys = finite(xys)
		for _, v := range xys {
			if v.Y > 1 {
				for k := range xys {
					xys[k].Y /= 100
				}
				break
			}
		}
		return xys
	}
	all := []struct {
		name string
		xys  plotter.XYs
	}{
		{"val AUC", series(func(e Epoch) float64 { return e.ValAUC })},
		{"val accuracy", series(func(e Epoch) float64 { return e.ValAcc })},
		{"train accuracy", series(func(e Epoch) float64 { return e.TrainAcc })},
	}
	p := newPlot("Per-epoch quality", "epoch", "AUC / accuracy")
	drawn := 0
	for i, s := range all {
		if len(s.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return fmt.Errorf("plot %s: %s: %w", path, s.name, err)
		}
		l.Color, l.Width = palette(i), vg.Points(2)
		if i == 2 {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pts.Color, pts.Shape, pts.Radius = palette(i), draw.CircleGlyph{}, vg.Points(2.5)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("plot %s: no AUC or accuracy values in the training log", path)
	}
	p.Y.Max = 1
	p.X.Tick.Marker = integerTicks{}
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(10), vg.Points(10)
	return save(p, path, plotW, plotH)
}

// integerTicks labels whole numbers only (epochs), about ten of them.
type integerTicks struct{}

// Ticks implements plot.Ticker.
func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	step := max(1, math.Ceil((hi-lo)/10))
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.Itoa(int(v))})
	}
	return ticks
}
