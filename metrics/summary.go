package metrics

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Threshold is the decision threshold on p_fake used for accuracy and for
// binarising patch and pixel maps: above it means fake (forged).
const Threshold = 0.5

// Record is the detector's output for one face crop plus its ground truth.
type Record struct {
	Input string  `json:"input"`           // image or frame the face comes from
	Video string  `json:"video,omitempty"` // video the frame belongs to; "" for a photo
	Label int     `json:"label"`           // 0 real, 1 fake
	PFake float64 `json:"p_fake"`          // predicted probability of forgery

	// Patch is the Grid x Grid map of patch forgery probabilities,
	// row-major; nil when not produced.
	Patch []float64 `json:"patch,omitempty"`
	Grid  int       `json:"grid,omitempty"`

	// Mask is the MaskH x MaskW pixel forgery mask in [0, 1] (1 forged),
	// row-major, aligned with the face crop; nil when unknown. Real faces
	// should carry an all-zero mask to take part in localisation metrics.
	Mask  []float64 `json:"-"`
	MaskH int       `json:"-"`
	MaskW int       `json:"-"`
}

// Group names the video r belongs to for video-level metrics: its Video,
// or its Input when it has none (a photo is a video of one frame). The
// prefixes keep a video named like some photo apart from it.
func (r Record) Group() string {
	if r.Video == "" {
		return "input:" + r.Input
	}
	return "video:" + r.Video
}

// Summary holds the evaluation numbers of a set of records. Pointer fields
// are nil (and left out of JSON) when they cannot be computed, e.g. AUC on
// a set holding only fakes, or localisation without masks.
type Summary struct {
	N       int `json:"n"`
	NReal   int `json:"n_real"`
	NFake   int `json:"n_fake"`
	NVideos int `json:"n_videos,omitempty"` // videos grouped for VideoAUC
	NLoc    int `json:"n_loc,omitempty"`    // records with both a patch map and a mask

	AUC          *float64 `json:"auc,omitempty"`
	VideoAUC     *float64 `json:"video_auc,omitempty"`
	Acc          *float64 `json:"acc,omitempty"`
	AccReal      *float64 `json:"acc_real,omitempty"`
	AccFake      *float64 `json:"acc_fake,omitempty"`
	EER          *float64 `json:"eer,omitempty"`
	EERThreshold *float64 `json:"eer_threshold,omitempty"`
	AP           *float64 `json:"ap,omitempty"`
	LogLoss      *float64 `json:"log_loss,omitempty"`  // mean binary cross entropy of p_fake
	Threshold    float64  `json:"threshold,omitempty"` // of acc, acc_real, acc_fake
	PatchAUC     *float64 `json:"patch_auc,omitempty"`
	PatchIoU     *float64 `json:"patch_iou,omitempty"`
	PixelIoU     *float64 `json:"pixel_iou,omitempty"`
}

// Row is one line of a human-readable table of a Summary.
type Row struct {
	Key   string // JSON name, e.g. "auc"
	Name  string // description, e.g. "frame-level ROC AUC"
	Value string // formatted number
}

// Rows lists the computed numbers of s in a fixed order, for tables.
func (s Summary) Rows() []Row {
	rows := []Row{
		{"n", "samples (faces)", strconv.Itoa(s.N)},
		{"n_real", "real samples", strconv.Itoa(s.NReal)},
		{"n_fake", "fake samples", strconv.Itoa(s.NFake)},
	}
	if s.NVideos > 0 {
		rows = append(rows, Row{"n_videos", "videos", strconv.Itoa(s.NVideos)})
	}
	if s.NLoc > 0 {
		rows = append(rows, Row{"n_loc", "samples with patch map and mask", strconv.Itoa(s.NLoc)})
	}
	add := func(key, name string, v *float64) {
		if v != nil {
			rows = append(rows, Row{key, name, strconv.FormatFloat(*v, 'f', 4, 64)})
		}
	}
	add("auc", "frame-level ROC AUC", s.AUC)
	add("video_auc", "video-level ROC AUC (mean frame score)", s.VideoAUC)
	thr := s.Threshold
	if thr == 0 {
		thr = Threshold
	}
	add("acc", "accuracy at p_fake > "+strconv.FormatFloat(thr, 'g', 4, 64), s.Acc)
	add("acc_real", "accuracy on real", s.AccReal)
	add("acc_fake", "accuracy on fake", s.AccFake)
	add("eer", "equal error rate", s.EER)
	add("eer_threshold", "threshold at the EER", s.EERThreshold)
	add("ap", "average precision", s.AP)
	add("log_loss", "log loss (binary cross entropy of p_fake)", s.LogLoss)
	add("patch_auc", "patch-level AUC of the map", s.PatchAUC)
	add("patch_iou", "patch IoU at 0.5", s.PatchIoU)
	add("pixel_iou", "pixel IoU at 0.5 (map upsampled)", s.PixelIoU)
	return rows
}

func ptr(v float64) *float64 { return &v }

// Compute evaluates recs: frame-level metrics over all records, video-level
// AUC when any record names a video (records without one count as videos of
// their own), and localisation metrics over the records that carry both a
// patch map and a mask. Metrics that the data cannot support (one class
// only, no masks) are left nil. Malformed records (label not 0/1, NaN
// p_fake, map or mask of the wrong size) are errors naming the input.
func Compute(recs []Record) (Summary, error) { return ComputeAt(recs, Threshold) }

// ComputeAt is Compute with accuracies at the decision threshold thr on
// p_fake (a calibrated model's stored threshold) instead of 0.5.
func ComputeAt(recs []Record, thr float64) (Summary, error) {
	s := Summary{Threshold: thr}
	if !(thr > 0 && thr <= 1) {
		return s, fmt.Errorf("metrics: threshold %v outside (0, 1]", thr)
	}
	if len(recs) == 0 {
		return s, errors.New("metrics: no records")
	}
	scores := make([]float64, len(recs))
	labels := make([]int, len(recs))
	groups := make([]string, len(recs))
	hasVideo := false
	first := make(map[string]int) // video -> index of its first record
	for i, r := range recs {
		if r.Label != 0 && r.Label != 1 {
			return s, fmt.Errorf("metrics: %s: label %d, want 0 (real) or 1 (fake)", r.Input, r.Label)
		}
		if math.IsNaN(r.PFake) || r.PFake < 0 || r.PFake > 1 {
			return s, fmt.Errorf("metrics: %s: p_fake %v is not a probability", r.Input, r.PFake)
		}
		scores[i], labels[i] = r.PFake, r.Label
		groups[i] = r.Group()
		if r.Video == "" {
			continue
		}
		hasVideo = true
		if j, seen := first[r.Video]; !seen {
			first[r.Video] = i
		} else if recs[j].Label != r.Label {
			return s, fmt.Errorf("metrics: video %q has frames labelled %d (%s) and %d (%s)", r.Video, recs[j].Label, recs[j].Input, r.Label, r.Input)
		}
	}
	s.N = len(recs)
	s.NReal, s.NFake = counts(labels)

	acc, accReal, accFake, err := Accuracy(scores, labels, thr)
	if err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	z := make([]float64, len(scores))
	for i, p := range scores {
		z[i] = Logit(p)
	}
	if ll, err := LogLoss(z, labels, 1); err == nil {
		s.LogLoss = ptr(ll)
	}
	s.Acc = ptr(acc)
	if s.NReal > 0 {
		s.AccReal = ptr(accReal)
	}
	if s.NFake > 0 {
		s.AccFake = ptr(accFake)
		ap, err := AveragePrecision(scores, labels)
		if err != nil {
			return s, fmt.Errorf("metrics: %w", err)
		}
		s.AP = ptr(ap)
	}
	if s.NReal > 0 && s.NFake > 0 {
		auc, err := AUC(scores, labels)
		if err != nil {
			return s, fmt.Errorf("metrics: %w", err)
		}
		s.AUC = ptr(auc)
		eer, thr, err := EER(scores, labels)
		if err != nil {
			return s, fmt.Errorf("metrics: %w", err)
		}
		s.EER, s.EERThreshold = ptr(eer), ptr(thr)
	}
	if hasVideo {
		vs, vl, err := GroupMean(scores, labels, groups)
		if err != nil {
			return s, fmt.Errorf("metrics: %w", err)
		}
		s.NVideos = len(vs)
		if neg, pos := counts(vl); neg > 0 && pos > 0 {
			auc, err := AUC(vs, vl)
			if err != nil {
				return s, fmt.Errorf("metrics: %w", err)
			}
			s.VideoAUC = ptr(auc)
		}
	}
	if err := s.locate(recs); err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	return s, nil
}

// locate fills the localisation metrics from the records holding both a
// patch map and a mask.
func (s *Summary) locate(recs []Record) error {
	var preds, targets [][]float64
	var patch, pixel Overlap
	for _, r := range recs {
		if r.Patch == nil && r.Mask == nil {
			continue
		}
		if r.Patch != nil {
			if r.Grid <= 0 || len(r.Patch) != r.Grid*r.Grid {
				return fmt.Errorf("%s: patch map has %d values, want grid %d squared", r.Input, len(r.Patch), r.Grid)
			}
			for j, p := range r.Patch {
				if math.IsNaN(p) || p < 0 || p > 1 {
					return fmt.Errorf("%s: patch %d probability is %v", r.Input, j, p)
				}
			}
		}
		if r.Mask != nil && (r.MaskH <= 0 || r.MaskW <= 0 || len(r.Mask) != r.MaskH*r.MaskW) {
			return fmt.Errorf("%s: mask has %d values, want %dx%d", r.Input, len(r.Mask), r.MaskH, r.MaskW)
		}
		if r.Patch == nil || r.Mask == nil {
			continue
		}
		target, err := TargetMap(r.Mask, r.MaskH, r.MaskW, r.Grid)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Input, err)
		}
		up, err := Bilinear(r.Patch, r.Grid, r.Grid, r.MaskH, r.MaskW)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Input, err)
		}
		if err := patch.Add(r.Patch, target, Threshold); err != nil {
			return fmt.Errorf("%s: %w", r.Input, err)
		}
		if err := pixel.Add(up, r.Mask, Threshold); err != nil {
			return fmt.Errorf("%s: %w", r.Input, err)
		}
		preds = append(preds, r.Patch)
		targets = append(targets, target)
	}
	s.NLoc = len(preds)
	if s.NLoc == 0 {
		return nil
	}
	if auc, err := PatchAUC(preds, targets); err == nil {
		s.PatchAUC = ptr(auc)
	} else if !errors.Is(err, ErrOneClass) {
		return err
	}
	if v, ok := patch.IoU(); ok {
		s.PatchIoU = ptr(v)
	}
	if v, ok := pixel.IoU(); ok {
		s.PixelIoU = ptr(v)
	}
	return nil
}
