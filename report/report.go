// Package report writes the evaluation report of `lvnet eval --report
// DIR`: PNG plots (ROC and precision-recall curves, score histograms,
// training curves from a metrics.jsonl log) and a self-contained HTML page
// showing the numbers, the plots and the worst errors with their patch
// heatmaps.
package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"image"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/lvnet-go/lvnet/internal/fsutil"
	"github.com/lvnet-go/lvnet/metrics"
	"github.com/lvnet-go/lvnet/viz"
)

// Options controls what Write puts into the report.
type Options struct {
	// Title heads the page; default "LVNet evaluation".
	Title string
	// Subtitle is shown under the title, e.g. the model and data evaluated.
	Subtitle string
	// LoadImage reads the face image of a record (Record.Input) for the
	// worst-error heatmaps; nil leaves the pictures out.
	LoadImage func(path string) (image.Image, error)
	// Worst is how many real and how many fake worst errors to show;
	// 0 means 8, negative none.
	Worst int
	// TrainLog is the path of the training run's metrics.jsonl; "" draws no
	// training curves.
	TrainLog string
	// Logf, when set, receives the problems that did not stop the report
	// (a broken log line, an unreadable image); they are also listed on
	// the page.
	Logf func(format string, args ...any)
}

// Files written into the report directory.
const (
	IndexFile  = "index.html"
	ROCFile    = "roc.png"
	PRFile     = "pr.png"
	HistFile   = "scores.png"
	LossFile   = "train_loss.png"
	EpochsFile = "train_epochs.png"
	ErrorsDir  = "errors"     // overlays of the worst errors
	SheetFile  = "errors.png" // contact sheet of all of them
)

// plotJob is a plot to draw into file.
type plotJob struct {
	file, caption string
	draw          func(path string) error
}

// figure is one plot on the page.
type figure struct{ File, Caption string }

// card is one worst-error picture on the page.
type card struct {
	Image, Input, Base, Video, Score string
	Wrong                            bool
}

// cardGroup is one grid of worst errors.
type cardGroup struct {
	Title, Note string
	Cards       []card
}

// page is the data of the HTML template.
type page struct {
	Title, Subtitle, Generated string
	Rows                       []metrics.Row
	JSON                       string
	Plots                      []figure
	Worst                      []cardGroup
	Sheet                      string
	Problems                   []string
}

// Write creates dir (if needed) and writes the report of sum and recs into
// it: index.html and the PNGs it shows. A plot or picture that cannot be
// made (one class only, broken training log line, unreadable image) is
// listed under "Problems" on the page and passed to opts.Logf; err reports
// only what stops the whole report (dir or page not writable, a PNG not
// writable).
func Write(dir string, sum metrics.Summary, recs []metrics.Record, opts Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	pg := page{Title: cmp.Or(opts.Title, "LVNet evaluation"), Subtitle: opts.Subtitle, Generated: time.Now().Format("2006-01-02 15:04:05 MST")}
	problem := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		pg.Problems = append(pg.Problems, msg)
		if opts.Logf != nil {
			opts.Logf("%s", msg)
		}
	}
	pg.Rows = sum.Rows()
	js, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	pg.JSON = string(js)

	// Plots of the scores.
	scores := make([]float64, len(recs))
	labels := make([]int, len(recs))
	groups := make([]string, len(recs))
	videos := false
	for i, r := range recs {
		scores[i], labels[i] = r.PFake, r.Label
		groups[i] = r.Group()
		videos = videos || r.Video != ""
	}
	curves := []Curve{{Name: "frames", Scores: scores, Labels: labels}}
	if videos {
		vs, vl, err := metrics.GroupMean(scores, labels, groups)
		if err != nil {
			problem("video-level curves: %v", err)
		} else {
			curves = append(curves, Curve{Name: "videos (mean score)", Scores: vs, Labels: vl})
		}
	}
	plots := []plotJob{
		{ROCFile, "ROC curve", func(p string) error { return PlotROC(p, curves) }},
		{PRFile, "Precision-recall curve", func(p string) error { return PlotPR(p, curves) }},
		{HistFile, "Score distributions of real and fake faces", func(p string) error { return PlotHistogram(p, scores, labels) }},
	}
	if opts.TrainLog != "" {
		log, probs, err := ReadTrainLog(opts.TrainLog)
		for _, p := range probs {
			problem("training log: %s", p)
		}
		if err != nil {
			problem("%v", err)
		}
		if len(log.Steps) > 0 {
			plots = append(plots, plotJob{LossFile, "Training loss per step", func(p string) error { return PlotLoss(p, log.Steps) }})
		}
		if len(log.Epochs) > 0 {
			plots = append(plots, plotJob{EpochsFile, "Validation AUC and accuracy per epoch", func(p string) error { return PlotEpochs(p, log.Epochs) }})
		}
		if err == nil && len(log.Steps)+len(log.Epochs) == 0 {
			problem("training log %s: no step or epoch lines", opts.TrainLog)
		}
	}
	if len(recs) > 0 {
		for _, pl := range plots {
			if err := pl.draw(filepath.Join(dir, pl.file)); err != nil {
				problem("%s: %v", pl.caption, err)
				continue
			}
			pg.Plots = append(pg.Plots, figure{pl.file, pl.caption})
		}
	} else {
		problem("no records: nothing to plot")
	}

	if err := worst(dir, recs, opts, &pg, problem); err != nil {
		return fmt.Errorf("report: %w", err)
	}

	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pg); err != nil {
		return fmt.Errorf("report: render %s: %w", IndexFile, err)
	}
	index := filepath.Join(dir, IndexFile)
	if err := fsutil.WriteFile(index, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: write %s: %w", index, err)
	}
	return nil
}

// worst renders the worst errors: the reals scored most fake and the fakes
// scored most real.
func worst(dir string, recs []metrics.Record, opts Options, pg *page, problem func(string, ...any)) error {
	n := opts.Worst
	if n == 0 {
		n = 8
	}
	if n < 0 || len(recs) == 0 {
		return nil
	}
	var reals, fakes []metrics.Record
	for _, r := range recs {
		if r.Label == 0 {
			reals = append(reals, r)
		} else {
			fakes = append(fakes, r)
		}
	}
	// Stable sorts keep the input order among equal scores.
	slices.SortStableFunc(reals, func(a, b metrics.Record) int { return cmp.Compare(b.PFake, a.PFake) })
	slices.SortStableFunc(fakes, func(a, b metrics.Record) int { return cmp.Compare(a.PFake, b.PFake) })
	groups := []struct {
		title, note, prefix string
		recs                []metrics.Record
	}{
		{"Reals scored most fake", "The real faces with the highest p(fake); a red frame marks a false alarm (p > 0.5).", "real", reals[:min(n, len(reals))]},
		{"Fakes scored most real", "The forged faces with the lowest p(fake); a green frame marks a missed fake (p ≤ 0.5).", "fake", fakes[:min(n, len(fakes))]},
	}
	if opts.LoadImage != nil {
		if err := os.MkdirAll(filepath.Join(dir, ErrorsDir), 0o755); err != nil {
			return err
		}
	}
	var sheet []image.Image
	var captions []string
	for _, g := range groups {
		if len(g.recs) == 0 {
			continue
		}
		cg := cardGroup{Title: g.title, Note: g.note}
		for i, r := range g.recs {
			c := card{Input: r.Input, Base: filepath.Base(r.Input), Video: r.Video, Score: fmt.Sprintf("%.4f", r.PFake), Wrong: (r.PFake > metrics.Threshold) != (r.Label == 1)}
			if opts.LoadImage != nil {
				if img, err := panel(r, opts.LoadImage); err != nil {
					problem("worst errors: %s: %v", r.Input, err)
				} else {
					file := filepath.ToSlash(filepath.Join(ErrorsDir, fmt.Sprintf("%s_%02d.png", g.prefix, i+1)))
					if err := viz.WritePNG(filepath.Join(dir, file), img); err != nil {
						return err
					}
					c.Image = file
					sheet = append(sheet, img)
					captions = append(captions, fmt.Sprintf("%s %s  %s", g.prefix, c.Score, c.Base))
				}
			}
			cg.Cards = append(cg.Cards, c)
		}
		pg.Worst = append(pg.Worst, cg)
	}
	if len(sheet) > 0 {
		if err := viz.WritePNG(filepath.Join(dir, SheetFile), viz.Grid(sheet, 4, captions)); err != nil {
			return err
		}
		pg.Sheet = SheetFile
	}
	return nil
}

// panel loads a record's face and draws its heatmap panel.
func panel(r metrics.Record, load func(string) (image.Image, error)) (image.Image, error) {
	img, err := load(r.Input)
	if err != nil {
		return nil, err
	}
	if img == nil {
		return nil, fmt.Errorf("no image")
	}
	label := "real"
	if r.PFake > metrics.Threshold {
		label = "fake"
	}
	return viz.Panel(img, r.Patch, r.Grid, r.PFake, label)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f6f7f9; color: #1f2328; }
header { background: #1e1e1e; color: #fff; padding: 20px 32px; }
header h1 { margin: 0; font-size: 24px; }
header p { margin: 6px 0 0; color: #bbb; font-size: 14px; }
main { padding: 8px 32px 40px; max-width: 1500px; }
h2 { font-size: 19px; margin: 28px 0 10px; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
th, td { padding: 6px 14px; border-bottom: 1px solid #eee; text-align: left; font-size: 14px; }
th { font-weight: 500; }
td.key { color: #888; font-family: ui-monospace, monospace; font-size: 12px; }
td.num { font-variant-numeric: tabular-nums; font-family: ui-monospace, monospace; text-align: right; }
details { margin-top: 10px; font-size: 13px; }
pre { background: #fff; padding: 10px; border: 1px solid #ddd; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
.plots figure { margin: 0; background: #fff; padding: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.plots img { width: 560px; max-width: 100%; display: block; }
figcaption { font-size: 13px; color: #555; margin-top: 4px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 12px; }
.card { margin: 0; background: #fff; padding: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.12); border-top: 4px solid #2e9d4f; }
.card.wrong { border-top-color: #e53935; }
.card img { width: 100%; display: block; }
.card .name { display: block; font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere; }
.noimg { height: 120px; display: flex; align-items: center; justify-content: center; background: #eee; color: #888; font-size: 13px; }
.problems li { font-family: ui-monospace, monospace; font-size: 12px; color: #a0400b; }
</style>
</head>
<body>
<header><h1>{{.Title}}</h1>{{if .Subtitle}}<p>{{.Subtitle}}</p>{{end}}<p>generated {{.Generated}}</p></header>
<main>
<h2>Numbers</h2>
<table>
{{range .Rows}}<tr><th>{{.Name}}</th><td class="key">{{.Key}}</td><td class="num">{{.Value}}</td></tr>
{{end}}</table>
<details><summary>as JSON</summary><pre>{{.JSON}}</pre></details>
{{if .Plots}}<h2>Plots</h2>
<div class="plots">
{{range .Plots}}<figure><a href="{{.File}}"><img src="{{.File}}" alt="{{.Caption}}"></a><figcaption>{{.Caption}}</figcaption></figure>
{{end}}</div>{{end}}
{{range .Worst}}<h2>{{.Title}}</h2>
<p>{{.Note}}</p>
<div class="cards">
{{range .Cards}}<figure class="card{{if .Wrong}} wrong{{end}}">{{if .Image}}<a href="{{.Image}}"><img src="{{.Image}}" alt="{{.Base}}"></a>{{else}}<div class="noimg">no picture</div>{{end}}<figcaption><span class="name" title="{{.Input}}">{{.Base}}</span>p(fake) {{.Score}}{{if .Video}} · video {{.Video}}{{end}}</figcaption></figure>
{{end}}</div>
{{end}}{{if .Sheet}}<p><a href="{{.Sheet}}">All worst errors on one sheet (PNG)</a></p>{{end}}
{{if .Problems}}<h2>Problems</h2>
<ul class="problems">
{{range .Problems}}<li>{{.}}</li>
{{end}}</ul>{{end}}
</main>
</body>
</html>
`))
