package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/internal/shard"
	"github.com/lvnet-go/lvnet/prepare"
	"github.com/lvnet-go/lvnet/torch"
)

// prepareMain turns videos, photos or a FaceForensics++ download into face
// crops, masks, landmarks and an index for training.
func prepareMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	tty := isTerminal(stderr)
	fs := newFlags(stderr, "prepare", "--out DIR [--shard K/N] INPUT...")
	out := fs.String("out", "", "output directory (crops, masks, index.jsonl; resumable)")
	masks := fs.String("masks", "", "masks of plain inputs: a mask file for one input, or a folder of masks named like the inputs")
	every := fs.Int("every", 1, "keep every Nth frame of each video (1: all, as the authors' preprocessing)")
	frames := fs.Int("frames", 0, "keep N frames spread evenly over each video instead of --every")
	size := fs.Int("size", 299, "side of the square crops in pixels")
	scale := fs.Float64("scale", 1.3, "crop square side as a multiple of the face box's longer side")
	clamp := fs.Bool("clamp", false, "move the crop square inside the frame instead of padding with black")
	allFaces := fs.Bool("all-faces", false, "keep every tracked face (face<ID>/ folders), not only the largest face's track")
	minFace := fs.Float64("min-face", 0, "drop faces whose box is smaller than this many pixels")
	layout := fs.String("layout", "", "index, or authors (also the 3-panel frame folders of the authors' code); default authors for a FaceForensics++ root")
	label := fs.String("label", "", "label of plain inputs: real or fake (default: from a folder named real or fake in the path)")
	methods := fs.String("methods", "", "FaceForensics++ subsets to process, comma-separated (e.g. Deepfakes,youtube; default all)")
	comp := fs.String("compression", "c23", "FaceForensics++ compression folder: raw, c23 or c40")
	workers := fs.Int("workers", 2, "videos processed at once")
	batch := fs.Int("batch-size", 1, "frames per detector batch")
	threads := fs.Int("threads", 0, "intra-op threads of the detector (default: all CPUs)")
	inputSize := fs.Int("detector-size", 0, "detector input size, a multiple of 32 (default 416)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	shardFlag := fs.String("shard", "", "process shard K of N (K from 0) of the videos/images, picked by a hash of each one's path below its input folder, into the same --out as the other shards; /N takes K from $"+shard.EnvKubernetes+" or $"+shard.EnvSlurm+"; lvnet merge DIR then writes the index")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sh, err := shard.Parse(*shardFlag, os.Getenv)
	if err != nil {
		return usagef("--shard: %v", err)
	}
	switch {
	case *out == "":
		return usagef("--out is required")
	case fs.NArg() == 0:
		return usagef("no inputs (videos, images, folders, or a FaceForensics++ root)")
	case *every < 1:
		return usagef("--every %d: want 1 or more", *every)
	case *frames < 0:
		return usagef("--frames %d: want 0 (use --every) or more", *frames)
	case *size < 16:
		return usagef("--size %d: want at least 16", *size)
	case !(*scale >= 1 && *scale <= 4):
		return usagef("--scale %v: want 1 to 4", *scale)
	case *workers < 1 || *batch < 1:
		return usagef("--workers and --batch-size must be at least 1")
	case *label != "" && *label != "real" && *label != "fake":
		return usagef("--label %q: want real or fake", *label)
	case *layout != "" && *layout != prepare.LayoutIndex && *layout != prepare.LayoutAuthors:
		return usagef("--layout %q: want index or authors", *layout)
	}
	if *threads > 0 {
		torch.SetThreads(*threads)
	}
	torch.KeepFreedMemory()
	o := prepare.Options{
		Out: *out, Masks: *masks, Every: *every, Frames: *frames, Size: *size, Scale: float32(*scale),
		Clamp: *clamp, AllFaces: *allFaces, MinFace: float32(*minFace), Layout: *layout, Label: *label,
		Methods: splitList(*methods), Compression: *comp, Workers: *workers, BatchFrames: *batch, Log: stderr,
		Shard: sh,
	}
	if fs.NArg() == 1 && !prepare.IsFFPP(fs.Arg(0)) && len(o.Methods) > 0 {
		return usagef("--methods selects subsets of a FaceForensics++ root; %s is not one", fs.Arg(0))
	}
	if *inputSize > 0 {
		det, err := face.NewDetector(face.DefaultModelDir(), face.Options{InputSize: *inputSize})
		if err != nil {
			return err
		}
		defer det.Close()
		o.Detector = det
	}
	if !*quiet {
		o.Progress = func(total int64) *progress.Bar {
			return progress.NewTo(stderr, tty, "prepare", total, "videos")
		}
	}
	st, err := prepare.Run(ctx, fs.Args(), o)
	if err != nil {
		return err
	}
	prefix := "prepare: "
	if sh.Enabled() {
		prefix = fmt.Sprintf("prepare: shard %s (%d of the %d videos/images): ", sh, st.Jobs, st.All)
	}
	fmt.Fprintf(stderr, "%s%d of %d videos/images done now, %d earlier; %d crops from %d frames in %s",
		prefix, st.Done, st.Jobs, st.Skipped, st.Crops, st.Frames, st.Elapsed.Round(1e9))
	if st.Failed > 0 || st.NoFace > 0 || st.NoMask > 0 {
		fmt.Fprintf(stderr, " (%d unreadable or corrupt, %d without a face, %d fake faces left out for an empty mask)", st.Failed, st.NoFace, st.NoMask)
	}
	fmt.Fprintln(stderr)
	if st.Interrupted {
		return fmt.Errorf("interrupted with %d of %d videos/images left; run the same command again to resume", st.Jobs-st.Done-st.Skipped, st.Jobs)
	}
	if sh.Enabled() {
		fmt.Fprintf(stderr, "prepare: when every shard has finished, lvnet merge %s writes %s\n", *out, filepath.Join(*out, data.IndexFile))
	}
	return nil
}
