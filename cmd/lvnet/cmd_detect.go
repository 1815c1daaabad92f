package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/fsutil"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/internal/shard"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
)

const detectArgs = "[--model M] [--json|--csv | --out DIR [--shard K/N]] [--heatmaps DIR] [--every N] INPUT... (photos, videos, folders; - reads paths from stdin)"

// detectMain finds the faces of photos and videos and tells, for each, how
// likely it is forged and where.
func detectMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	// Keep freed memory in the process: libtorch's large buffers are
	// allocated and freed on every forward pass.
	torch.KeepFreedMemory()
	fs := newFlags(stderr, "detect", detectArgs)
	asJSON := fs.Bool("json", false, `print {"results":[...],"errors":[...]} as JSON instead of a table`)
	asCSV := fs.Bool("csv", false, "print one CSV row per input instead of a table")
	heatmaps := fs.String("heatmaps", "", "write a heatmap overlay PNG per input into this folder")
	every := fs.Int("every", 0, "videos: analyse every Nth frame (default: about 2 frames per second)")
	maxFaces := fs.Int("max-faces", detect.DefaultMaxFaces, "faces analysed per photo or frame, the largest")
	df := addDetectorFlags(fs, "the inputs are aligned face crops, used whole (no face detection)",
		"folder of the face detector's models (scripts/fetch-face-models.sh installs them)")
	modelPath, aligned, faceModels, threshold := df.model, df.aligned, df.faceModels, df.threshold
	maxFrames, batch, workers := df.maxFrames, df.batch, df.workers
	quiet := fs.Bool("quiet", false, "no progress bar")
	outDir := fs.String("out", "", "batch jobs: write the results as JSON Lines to DIR/shard-K-of-N.jsonl (shard-0-of-1.jsonl without --shard), a line per input, each fsynced; a rerun skips the inputs done. lvnet merge DIR prints them as the table, --json or --csv")
	shardFlag := fs.String("shard", "", "with --out: analyse shard K of N (K from 0) of the inputs, picked by a hash of each input's path below its folder argument; /N takes K from $"+shard.EnvKubernetes+" or $"+shard.EnvSlurm)
	retry := fs.Bool("retry-errors", false, "with --out: analyse again the inputs whose earlier attempt failed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sh, err := shard.Parse(*shardFlag, os.Getenv)
	if err != nil {
		return usagef("--shard: %v", err)
	}
	dev, dt, err := df.parse()
	if err != nil {
		return err
	}
	if err := df.check(fs); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return usagef("no inputs: name photos, videos or folders, or - to read paths from stdin")
	case *asJSON && *asCSV:
		return usagef("--json and --csv exclude each other")
	case *every < 0:
		return usagef("--every %d: want 0 (about 2 frames per second) or more", *every)
	case *maxFaces < 1:
		return usagef("--max-faces %d: want at least 1", *maxFaces)
	case *outDir == "" && (sh.Enabled() || *retry):
		return usagef("--shard and --retry-errors need --out DIR (the results go to DIR/shard-K-of-N.jsonl)")
	case *outDir != "" && (*asJSON || *asCSV):
		return usagef("--out writes JSON Lines; lvnet merge %s prints the table, --json or --csv", *outDir)
	}
	if *outDir != "" && !sh.Enabled() {
		sh = shard.Shard{K: 0, N: 1}
	}
	ckpt, err := modelFile(fs, *modelPath)
	if err != nil {
		return err
	}
	entries, err := expandInputs(fs.Args(), stdin, func(msg string) { fmt.Fprintf(stderr, "lvnet detect: %s\n", msg) })
	if err != nil {
		return err
	}
	if dev.Type == torch.DeviceCUDA && dev.Index >= torch.CUDADeviceCount() {
		return fmt.Errorf("device %v: this machine has %d CUDA device(s)", dev, torch.CUDADeviceCount())
	}
	if *heatmaps != "" {
		if err := os.MkdirAll(*heatmaps, 0o755); err != nil {
			return fmt.Errorf("--heatmaps: %w", err)
		}
	}

	// This run's part of the inputs: all of them, or the shard's.
	var sel []int
	for k, e := range entries {
		if sh.Has(e.key) {
			sel = append(sel, k)
		}
	}
	// Heatmaps are named over the whole list, so that shards and reruns
	// name them as one run would.
	hmName := map[int]string{}
	if *heatmaps != "" {
		var all []detect.Input
		var pos []int
		for k, e := range entries {
			if e.fail == "" {
				all = append(all, detect.Input{Path: e.path})
				pos = append(pos, k)
			}
		}
		for i, name := range detect.HeatmapNames(all) {
			hmName[pos[i]] = name
		}
	}
	m, meta, err := checkpoint.Load(ckpt, checkpoint.LoadOptions{Device: dev, DType: dt})
	if err != nil {
		return err
	}
	defer m.Free()
	if !flagSet(fs, "threshold") {
		*threshold = meta.ThresholdOr(detect.DefaultThreshold)
	}
	var job *resultsJob
	if *outDir != "" {
		sum, err := fsutil.SHA256(ckpt)
		if err != nil {
			return fmt.Errorf("model: %w", err)
		}
		ro := resultsOptions{
			Model: sum, DType: dt.String(), Threshold: *threshold, Every: *every, MaxFrames: *maxFrames,
			MaxFaces: *maxFaces, Aligned: *aligned, Heatmaps: *heatmaps,
		}
		if job, err = openResultsJob(*outDir, sh, entries, sel, ro, *retry); err != nil {
			return err
		}
		defer job.Close()
	}

	// Outcomes in the order of the inputs as named: folder failures where
	// the folder was, analysis outcomes where their input was.
	rows := make([]outcome, len(entries))
	var ins []detect.Input
	var at []int // row of each input
	failedNow := 0
	for _, k := range sel {
		e := entries[k]
		if job != nil && job.done[k] {
			continue
		}
		if e.fail != "" {
			rows[k] = outcome{input: e.path, err: e.fail}
			fmt.Fprintf(stderr, "lvnet detect: %s: %s\n", termSafe(e.path), termSafe(e.fail))
			failedNow++
			if job != nil {
				if err := job.w.add(k, nil, &detect.Failure{Input: e.path, Error: e.fail}); err != nil {
					return err
				}
			}
			continue
		}
		ins = append(ins, detect.Input{Path: e.path, Heatmap: hmName[k]})
		at = append(at, k)
	}
	// Fold BatchNorms into the convolutions (and, on CPUs, run them
	// channels-last): about 30% faster, same results up to float rounding.
	if err := m.PrepareInference(model.InferenceOptions{ChannelsLast: dev.Type == torch.DeviceCPU}); err != nil {
		return err
	}
	popts := detect.PipelineOptions{BatchSize: *batch, Workers: *workers, Temperature: meta.TemperatureOr1()}
	if !*aligned && len(ins) > 0 {
		det, err := loadFaceDetector(*faceModels)
		if err != nil {
			return err
		}
		defer det.Close()
		popts.Faces = det
	}
	p, err := detect.NewPipeline(m, popts)
	if err != nil {
		return err
	}

	bar := progress.Quiet()
	if n := len(ins); !*quiet && (n > 1 || (n == 1 && media.IsVideo(ins[0].Path))) {
		if stderr == os.Stderr {
			bar = progress.New("detect", int64(n), "inputs")
		} else {
			bar = progress.NewTo(stderr, false, "detect", int64(n), "inputs")
		}
	}
	t0 := time.Now()
	opts := detect.Options{
		Aligned: *aligned, Threshold: *threshold, Every: *every, MaxFrames: *maxFrames, MaxFaces: *maxFaces,
		Heatmaps: *heatmaps,
	}
	ctx = detect.WithProgress(ctx, func(pr detect.Progress) {
		bar.SetDone(int64(pr.Inputs))
		bar.SetSuffix("%d frames, %d faces, %.1f faces/s", pr.Frames, pr.Faces, float64(pr.Faces)/time.Since(t0).Seconds())
		bar.Add(0)
	})
	// A results file that cannot be written stops the run.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var writeErr error
	analysed := 0
	err = p.AnalyzeAll(ctx, ins, opts, func(i int, r *detect.Result, err error) {
		name := ins[i].Path
		o := outcome{input: name, r: r}
		if err != nil {
			if ctx.Err() != nil {
				return // perhaps the interruption's doing: not an outcome
			}
			reason := err.Error()
			var ie *detect.InputError
			if errors.As(err, &ie) {
				reason = ie.Reason()
			}
			fmt.Fprintf(stderr, "lvnet detect: %s: %s\n", termSafe(name), termSafe(reason))
			o = outcome{input: name, err: reason}
			failedNow++
		} else if r.Incomplete {
			failedNow++
			fmt.Fprintf(stderr, "lvnet detect: %s: %s\n", termSafe(name), termSafe(strings.Join(r.Warnings, "; ")))
		}
		rows[at[i]] = o
		analysed++
		if job != nil {
			var fail *detect.Failure
			if o.r == nil {
				fail = &detect.Failure{Input: name, Error: o.err}
			}
			if werr := job.w.add(at[i], o.r, fail); werr != nil && writeErr == nil {
				writeErr = werr
				stop()
			}
		}
	})
	bar.Finish()
	switch {
	case writeErr != nil:
		return writeErr
	case err == nil && analysed < len(ins):
		err = ctx.Err() // interrupted as the last input ended
	}
	if job != nil {
		left := len(ins) - analysed
		where := "inputs"
		if sh.N > 1 {
			where = fmt.Sprintf("inputs of shard %s (%d in all)", sh, len(entries))
		}
		fmt.Fprintf(stderr, "lvnet detect: %d %s: %d done earlier, %d now, %d left; results in %s\n",
			len(sel), where, len(job.done), len(sel)-len(job.done)-left, left, job.path)
		if job.orphan > 0 {
			fmt.Fprintf(stderr, "lvnet detect: %s also keeps %s of inputs not given now (lvnet merge leaves them out)\n", job.path, plural(job.orphan, "result"))
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted with %d of %d inputs left; run the same command again to resume", left, len(sel))
			}
			return err
		}
	} else {
		if err != nil {
			return err
		}
		if err := printOutcomes(stdout, rows, *asJSON, *asCSV, *threshold); err != nil {
			return err
		}
	}
	if failedNow > 0 {
		return &partialError{failed: failedNow}
	}
	return nil
}

// printOutcomes writes the outcomes as lvnet detect prints them: a table,
// or the JSON document (asJSON) or CSV (asCSV).
func printOutcomes(w io.Writer, rows []outcome, asJSON, asCSV bool, threshold float64) error {
	var err error
	switch {
	case asJSON:
		resp := detect.Response{Results: []*detect.Result{}}
		for _, o := range rows {
			if o.r != nil {
				resp.Results = append(resp.Results, o.r)
			} else {
				resp.Errors = append(resp.Errors, detect.Failure{Input: o.input, Error: o.err})
			}
		}
		err = json.NewEncoder(w).Encode(resp)
	case asCSV:
		err = writeCSV(w, rows)
	default:
		err = writeTable(w, rows, threshold)
	}
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// failures counts the outcomes that make the exit status 1: failures and
// incomplete results.
func failures(rows []outcome) int {
	n := 0
	for _, o := range rows {
		if o.r == nil || o.r.Incomplete {
			n++
		}
	}
	return n
}

// modelFile returns the checkpoint to load: --model when given, else
// $LVNET_MODEL, else the shipped model.
func modelFile(fs *flag.FlagSet, flagValue string) (string, error) {
	if flagSet(fs, "model") {
		if flagValue == "" {
			return "", usagef("--model: empty path")
		}
		return flagValue, nil
	}
	p, err := detect.DefaultModelPath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", usagef("no model: $%s (%s) does not exist; unset it to use the shipped model, or pass --model M.safetensors", detect.ModelEnv, p)
	}
	return p, nil
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// loadFaceDetector loads the face detector for photos and video frames
// (without landmarks: the crops need the boxes only).
func loadFaceDetector(dir string) (*face.Detector, error) {
	det, err := face.NewDetector(dir, face.Options{NoLandmarks: true})
	if err != nil {
		return nil, fmt.Errorf("load the face detector from %s (install it with scripts/fetch-face-models.sh, or make deps; --aligned needs none): %w", dir, err)
	}
	return det, nil
}

// outcome is one line of the table or the CSV: a result or a failure.
type outcome struct {
	input string
	r     *detect.Result
	err   string
}

// writeTable prints one line per input, in columns aligned by display
// width, with control characters in names and messages escaped
// (writeColumns).
func writeTable(w io.Writer, rows []outcome, threshold float64) error {
	cells := [][]string{{"INPUT", "LABEL", "P_FAKE", "KIND", "FACES", "DETAILS"}}
	for _, o := range rows {
		if o.r == nil {
			cells = append(cells, []string{o.input, "error", "-", "-", "-", o.err})
			continue
		}
		r := o.r
		var details []string
		if v := r.Video; v != nil && r.Label != detect.LabelNone {
			details = append(details, fmt.Sprintf("face %d: mean of %s, max %.4f, %.0f%% of them >= %g",
				v.FaceID, plural(faceFrames(r, v.FaceID), "frame"), v.Max, 100*v.FracAbove, threshold))
		} else if len(r.Faces) > 1 {
			details = append(details, "most suspicious of "+strconv.Itoa(len(r.Faces))+" faces")
		}
		if r.Video != nil {
			details = append(details, plural(r.Video.Frames, "frame")+" analysed")
		}
		details = append(details, r.Warnings...)
		if r.Heatmap != "" {
			details = append(details, "heatmap "+r.Heatmap)
		}
		cells = append(cells, []string{r.Input, r.Label, fmt.Sprintf("%.4f", r.PFake), r.Kind, strconv.Itoa(len(r.Faces)), strings.Join(details, "; ")})
	}
	return writeColumns(w, cells)
}

// plural writes n things ("1 frame", "2 frames").
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// faceFrames returns the number of frames of face id in a video result.
func faceFrames(r *detect.Result, id int) int {
	for _, f := range r.Faces {
		if f.ID == id {
			return f.NumFrames
		}
	}
	return 0
}

// csvHeader names the CSV columns.
var csvHeader = []string{"input", "kind", "label", "p_fake", "faces", "frames", "face_id", "max_p_fake", "frac_fake",
	"width", "height", "heatmap", "warnings", "error"}

// writeCSV prints a header and one row per input (label "error" and the
// reason in the last column for inputs that could not be analysed).
func writeCSV(w io.Writer, rows []outcome) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	for _, o := range rows {
		if o.r == nil {
			cw.Write([]string{o.input, "", "error", "", "", "", "", "", "", "", "", "", "", o.err})
			continue
		}
		r := o.r
		frames, faceID, maxP, frac := "", "", "", ""
		if v := r.Video; v != nil {
			frames = strconv.Itoa(v.Frames)
			if r.Label != detect.LabelNone {
				faceID, maxP, frac = strconv.Itoa(v.FaceID), num(v.Max), num(v.FracAbove)
			}
		}
		cw.Write([]string{r.Input, r.Kind, r.Label, num(r.PFake), strconv.Itoa(len(r.Faces)), frames, faceID, maxP, frac,
			strconv.Itoa(r.Width), strconv.Itoa(r.Height), r.Heatmap, strings.Join(r.Warnings, "; "), ""})
	}
	cw.Flush()
	return cw.Error()
}
