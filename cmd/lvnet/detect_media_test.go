package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/internal/shared"
)

// needFaceModels skips the test when the face detector's models are not
// installed.
func needFaceModels(t *testing.T) {
	t.Helper()
	dir := face.DefaultModelDir()
	if _, err := os.Stat(filepath.Join(dir, "ssd_mobilenetv1_model-weights_manifest.json")); err != nil {
		t.Skipf("face models not installed in %s (run scripts/fetch-face-models.sh): %v", dir, err)
	}
}

// mediaTree lays out a folder of inputs: the FaceForensics++ example frame
// (one face), the mask picture (no face), a 2-second clip of the frame
// encoded with ffmpeg at 4 fps, a text file named .jpg, and files a folder
// walk leaves out (notes.txt, .hidden.png).
func mediaTree(t *testing.T) (dir string, photo, mask, clip, bad string) {
	t.Helper()
	needFaceModels(t)
	ex := shared.Path(t, "data", "ffpp-examples", "ex_original.png")
	exMask := shared.Path(t, "data", "ffpp-examples", "ex_deepfakes_mask.png")
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	dir = filepath.Join(t.TempDir(), "in")
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	cp := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	photo, mask, clip, bad = filepath.Join(dir, "face.png"), filepath.Join(sub, "mask.png"), filepath.Join(sub, "clip.mkv"), filepath.Join(dir, "bad.jpg")
	cp(ex, photo)
	cp(exMask, mask)
	cp(ex, filepath.Join(dir, ".hidden.png"))
	os.WriteFile(bad, []byte("this is text, not a JPEG\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not analysed\n"), 0o644)
	cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", ex, "-vf", "scale=320:240",
		"-frames:v", "8", "-r", "4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", clip)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return dir, photo, mask, clip, bad
}

// mediaResult is the JSON of one result as clients read it.
type mediaResult struct {
	Input      string      `json:"input"`
	Kind       string      `json:"kind"`
	PFake      *float64    `json:"p_fake"`
	Label      string      `json:"label"`
	PatchPFake [][]float64 `json:"patch_p_fake"`
	Heatmap    string      `json:"heatmap"`
	Faces      []struct {
		ID         int         `json:"id"`
		BBox       []float64   `json:"bbox"`
		CropBox    []float64   `json:"crop_box"`
		PFake      *float64    `json:"p_fake"`
		PatchPFake [][]float64 `json:"patch_p_fake"`
		Heatmap    string      `json:"heatmap"`
		NumFrames  int         `json:"num_frames"`
		MaxPFake   *float64    `json:"max_p_fake"`
	} `json:"faces"`
	Frames []struct {
		Index int     `json:"index"`
		Time  float64 `json:"time"`
		Faces []struct {
			ID    int       `json:"id"`
			BBox  []float64 `json:"bbox"`
			PFake float64   `json:"p_fake"`
		} `json:"faces"`
	} `json:"frames"`
	Video *struct {
		Frames    int     `json:"frames"`
		FaceID    int     `json:"face_id"`
		Mean      float64 `json:"mean"`
		Max       float64 `json:"max"`
		FracAbove float64 `json:"frac_above"`
	} `json:"video"`
	Warnings []string `json:"warnings"`
}

// TestDetectFolderJSON runs `lvnet detect --json --heatmaps` on a folder
// holding a photo with a face, one without, a video and a text file named
// .jpg: results for the three, the bad file named on stderr and in
// errors[], exit status 1, one heatmap per input with faces.
func TestDetectFolderJSON(t *testing.T) {
	dir, photo, mask, clip, bad := mediaTree(t)
	ckpt := saveSmallModel(t)
	hm := filepath.Join(t.TempDir(), "heat")
	stdout, stderr, err := runCmd(t, detectCmd, "--json", "--quiet", "--heatmaps", hm, "--model", ckpt, dir)
	var pe *partialError
	if !errors.As(err, &pe) || pe.failed != 1 {
		t.Fatalf("error %v, want exit status 1 for the one bad file\nstderr: %s", err, stderr)
	}
	if !strings.Contains(stderr, bad+": not an image (looks like text)") {
		t.Errorf("stderr does not name the bad file and why:\n%s", stderr)
	}
	var resp struct {
		Results []mediaResult `json:"results"`
		Errors  []struct {
			Input, Error string
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if len(resp.Errors) != 1 || resp.Errors[0].Input != bad {
		t.Errorf("errors %+v", resp.Errors)
	}
	var inputs []string
	for _, r := range resp.Results {
		inputs = append(inputs, r.Input)
	}
	if want := []string{photo, clip, mask}; !slices.Equal(inputs, want) {
		t.Fatalf("results for %q, want %q (lexical order, hidden and non-media files left out)", inputs, want)
	}
	ph, vid, none := resp.Results[0], resp.Results[1], resp.Results[2]

	// The photo: one face around (340, 120), its verdict, its heatmap.
	if ph.Kind != "image" || len(ph.Faces) != 1 || ph.PFake == nil || ph.Faces[0].PFake == nil || *ph.PFake != *ph.Faces[0].PFake {
		t.Fatalf("photo: %+v", ph)
	}
	f := ph.Faces[0]
	if cx, cy := (f.BBox[0]+f.BBox[2])/2, (f.BBox[1]+f.BBox[3])/2; math.Abs(cx-340) > 40 || math.Abs(cy-120) > 40 {
		t.Errorf("photo face box %v, want one centred near (340, 120)", f.BBox)
	}
	if w := f.CropBox[2] - f.CropBox[0]; math.Abs(w-1.3*math.Max(f.BBox[2]-f.BBox[0], f.BBox[3]-f.BBox[1])) > 0.01 {
		t.Errorf("crop box %v is not 1.3 times the face box %v", f.CropBox, f.BBox)
	}
	if len(ph.PatchPFake) != 4 || f.Heatmap != ph.Heatmap || ph.Heatmap != filepath.Join(hm, "face.heatmap.png") {
		t.Errorf("photo: patch map of %d rows, heatmap %q (face %q)", len(ph.PatchPFake), ph.Heatmap, f.Heatmap)
	}

	// The video: 8 frames at 4 fps, every 2nd analysed; one tracked face.
	if vid.Kind != "video" || vid.Video == nil || vid.Video.Frames != 4 || len(vid.Frames) != 4 || len(vid.Faces) != 1 {
		t.Fatalf("video: %+v", vid)
	}
	var sum, mx float64
	for k, fr := range vid.Frames {
		if fr.Index != 2*k || math.Abs(fr.Time-float64(2*k)/4) > 1e-9 || len(fr.Faces) != 1 || fr.Faces[0].ID != 1 {
			t.Fatalf("frame %d: %+v", k, fr)
		}
		sum += fr.Faces[0].PFake
		mx = math.Max(mx, fr.Faces[0].PFake)
	}
	vf := vid.Faces[0]
	if vf.ID != 1 || vf.NumFrames != 4 || math.Abs(*vf.PFake-sum/4) > 1e-12 || *vf.MaxPFake != mx ||
		vid.Video.FaceID != 1 || *vid.PFake != *vf.PFake || vid.Video.Max != mx {
		t.Errorf("video verdict %+v, face %+v; want the mean %v and max %v of the frames", vid.Video, vf, sum/4, mx)
	}
	// The video frame is the photo scaled by 1/2: the face box too.
	if math.Abs(vf.BBox[0]-f.BBox[0]/2) > 8 || math.Abs(vf.BBox[3]-f.BBox[3]/2) > 8 {
		t.Errorf("video face box %v, photo's %v: want about half", vf.BBox, f.BBox)
	}
	if vid.Heatmap != filepath.Join(hm, "clip.heatmap.png") {
		t.Errorf("video heatmap %q", vid.Heatmap)
	}

	// No face: label none, a warning, no heatmap.
	if none.Label != "none" || *none.PFake != 0 || len(none.Faces) != 0 || none.Heatmap != "" || !slices.Equal(none.Warnings, []string{"no face found"}) {
		t.Errorf("mask picture: %+v", none)
	}
	ents, _ := os.ReadDir(hm)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"clip.heatmap.png", "face.heatmap.png"}) {
		t.Errorf("heatmap folder holds %q", names)
	}

	// The same photo and video listed on stdin, as CSV: same scores, exit 0.
	var out, errOut bytes.Buffer
	err = detectMain(context.Background(), []string{"--csv", "--quiet", "--model", ckpt, "-"},
		strings.NewReader(photo+"\n\n"+clip+"\r\n"), &out, &errOut)
	if err != nil {
		t.Fatalf("stdin: %v\n%s", err, errOut.String())
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) != 3 || !slices.Equal(rows[0], csvHeader) {
		t.Fatalf("CSV %q (%v)", out.String(), err)
	}
	for i, want := range []mediaResult{ph, vid} {
		row := rows[i+1]
		pf, _ := strconv.ParseFloat(row[3], 64)
		if row[0] != want.Input || row[1] != want.Kind || row[2] != want.Label || math.Abs(pf-*want.PFake) > 1e-5 || row[4] != "1" {
			t.Errorf("CSV row %q, want %s %s %s %v", row, want.Input, want.Kind, want.Label, *want.PFake)
		}
	}
	if rows[2][5] != "4" || rows[2][6] != "1" {
		t.Errorf("CSV video row %q: want 4 frames, face 1", rows[2])
	}

	// The table: one line per input, the failures too; an empty folder
	// and a missing file are failures (exit 1).
	empty := t.TempDir()
	gone := filepath.Join(empty, "gone.png")
	stdout, stderr, err = runCmd(t, detectCmd, "--quiet", "--model", ckpt, empty, gone, photo, mask)
	if !errors.As(err, &pe) || pe.failed != 2 || !strings.Contains(stderr, empty+": no photos or videos in this folder") ||
		!strings.Contains(stderr, gone+": cannot open: no such file or directory") {
		t.Errorf("empty folder and missing file: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 || strings.Fields(lines[0])[0] != "INPUT" {
		t.Fatalf("table:\n%s", stdout)
	}
	for i, want := range [][2]string{{empty, "error"}, {gone, "error"}, {photo, ph.Label}, {mask, "none"}} {
		if f := strings.Fields(lines[i+1]); f[0] != want[0] || f[1] != want[1] {
			t.Errorf("table line %q, want %s %s", lines[i+1], want[0], want[1])
		}
	}
	if !strings.Contains(lines[4], "no face found") || !strings.Contains(lines[2], "no such file") {
		t.Errorf("table details:\n%s", stdout)
	}
}
