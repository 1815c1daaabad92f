// Package metrics computes the evaluation numbers of a forgery detector:
// frame- and video-level ROC AUC, ROC and precision-recall curves, average
// precision, equal error rate, accuracy at a threshold, and the localisation
// quality of the patch map (patch-level AUC, patch IoU, pixel IoU after
// bilinear upsampling). The definitions follow scikit-learn's where one
// exists, so numbers agree with the authors' PyTorch evaluation.
//
// Scores are probabilities of forgery (higher means more likely fake);
// labels are 0 (real) and 1 (fake).
package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrOneClass is returned (wrapped) when a metric needs both real and fake
// samples but the input holds only one class.
var ErrOneClass = errors.New("only one class present")

// check validates a score/label pair of slices.
func check(scores []float64, labels []int) error {
	if len(scores) != len(labels) {
		return fmt.Errorf("%d scores but %d labels", len(scores), len(labels))
	}
	if len(scores) == 0 {
		return errors.New("no samples")
	}
	for i, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return fmt.Errorf("score %d is %v", i, s)
		}
		if l := labels[i]; l != 0 && l != 1 {
			return fmt.Errorf("label %d is %d, want 0 (real) or 1 (fake)", i, l)
		}
	}
	return nil
}

// counts returns the number of negatives (label 0) and positives (label 1).
func counts(labels []int) (neg, pos int) {
	for _, l := range labels {
		if l == 1 {
			pos++
		} else {
			neg++
		}
	}
	return neg, pos
}

// checkBoth validates the input and requires both classes.
func checkBoth(scores []float64, labels []int) error {
	if err := check(scores, labels); err != nil {
		return err
	}
	neg, pos := counts(labels)
	if neg == 0 || pos == 0 {
		return fmt.Errorf("%w (%d real, %d fake)", ErrOneClass, neg, pos)
	}
	return nil
}

// AUC returns the area under the ROC curve, computed like scikit-learn's
// roc_auc_score: the Mann-Whitney statistic with average ranks, so a tie
// between a real and a fake sample counts one half. It fails when the input
// holds only one class, when lengths differ, or when a score is NaN or
// infinite.
func AUC(scores []float64, labels []int) (float64, error) {
	if err := checkBoth(scores, labels); err != nil {
		return 0, fmt.Errorf("auc: %w", err)
	}
	ps := sorted(scores, labels, false)
	// Average ranks (1-based) over runs of equal scores.
	var rankSumPos float64
	for i := 0; i < len(ps); {
		j, npos := i, 0
		for ; j < len(ps) && ps[j].s == ps[i].s; j++ {
			npos += int(ps[j].l)
		}
		rankSumPos += float64(npos) * float64(i+1+j) / 2 // mean of ranks i+1 .. j
		i = j
	}
	neg, pos := counts(labels)
	n1, n0 := float64(pos), float64(neg)
	return (rankSumPos - n1*(n1+1)/2) / (n1 * n0), nil
}

// scored is one sample: its score and its label.
type scored struct {
	s float64
	l int8
}

// sorted returns the samples ordered by score, ascending or descending
// (desc); the order within ties is unspecified.
func sorted(scores []float64, labels []int, desc bool) []scored {
	ps := make([]scored, len(scores))
	for i, s := range scores {
		ps[i] = scored{s, int8(labels[i])}
	}
	slices.SortFunc(ps, func(a, b scored) int {
		if desc {
			return cmp.Compare(b.s, a.s)
		}
		return cmp.Compare(a.s, b.s)
	})
	return ps
}

// clfCurve returns, for every distinct score in decreasing order, the number
// of false and true positives when predicting fake for scores >= that
// threshold (scikit-learn's _binary_clf_curve).
func clfCurve(scores []float64, labels []int) (fps, tps, thr []float64) {
	ps := sorted(scores, labels, true)
	var tp, fp float64
	for i, p := range ps {
		if p.l == 1 {
			tp++
		} else {
			fp++
		}
		if i == len(ps)-1 || ps[i+1].s != p.s {
			fps = append(fps, fp)
			tps = append(tps, tp)
			thr = append(thr, p.s)
		}
	}
	return fps, tps, thr
}

// ROC returns the receiver operating characteristic like scikit-learn's
// roc_curve with drop_intermediate=false: one point per distinct score,
// from the strictest threshold to the loosest, preceded by the point (0, 0)
// whose threshold is +Inf. A sample is predicted fake when its score is >=
// the threshold. Both classes must be present.
func ROC(scores []float64, labels []int) (fpr, tpr, thresholds []float64, err error) {
	if err := checkBoth(scores, labels); err != nil {
		return nil, nil, nil, fmt.Errorf("roc: %w", err)
	}
	fps, tps, thr := clfCurve(scores, labels)
	n := len(thr) + 1
	fpr = make([]float64, n)
	tpr = make([]float64, n)
	thresholds = make([]float64, n)
	thresholds[0] = math.Inf(1)
	negs, poss := fps[len(fps)-1], tps[len(tps)-1]
	for i := range thr {
		fpr[i+1] = fps[i] / negs
		tpr[i+1] = tps[i] / poss
		thresholds[i+1] = thr[i]
	}
	return fpr, tpr, thresholds, nil
}

// PR returns the precision-recall curve like scikit-learn's
// precision_recall_curve: thresholds are the distinct scores in increasing
// order, precision[i] and recall[i] are those of predicting fake for scores
// >= thresholds[i], and a last point (precision 1, recall 0) without a
// threshold ends the curve, so len(precision) = len(thresholds)+1. At least
// one fake sample is needed.
func PR(scores []float64, labels []int) (precision, recall, thresholds []float64, err error) {
	if err := check(scores, labels); err != nil {
		return nil, nil, nil, fmt.Errorf("precision-recall: %w", err)
	}
	if _, pos := counts(labels); pos == 0 {
		return nil, nil, nil, fmt.Errorf("precision-recall: %w (no fake sample)", ErrOneClass)
	}
	fps, tps, thr := clfCurve(scores, labels)
	n := len(thr)
	precision = make([]float64, n+1)
	recall = make([]float64, n+1)
	thresholds = make([]float64, n)
	poss := tps[n-1]
	for i := range n {
		j := n - 1 - i // reverse: recall decreasing
		precision[i] = tps[j] / (tps[j] + fps[j])
		recall[i] = tps[j] / poss
		thresholds[i] = thr[j]
	}
	precision[n], recall[n] = 1, 0
	return precision, recall, thresholds, nil
}

// AveragePrecision returns scikit-learn's average_precision_score: the sum
// over thresholds of (R_n - R_{n-1}) * P_n, a step-wise area under the
// precision-recall curve without interpolation. At least one fake sample is
// needed.
func AveragePrecision(scores []float64, labels []int) (float64, error) {
	p, r, _, err := PR(scores, labels)
	if err != nil {
		return 0, fmt.Errorf("average precision: %w", err)
	}
	var ap float64
	for i := 0; i+1 < len(r); i++ {
		ap += (r[i] - r[i+1]) * p[i]
	}
	return ap, nil
}

// EER returns the equal error rate: the rate at which the false positive
// rate (reals called fake) equals the false negative rate (fakes called
// real). It is linearly interpolated between the two consecutive ROC points
// where FPR - FNR changes sign; threshold is interpolated the same way
// (the +Inf threshold of the first ROC point is replaced by the highest
// score for this purpose). Both classes must be present.
func EER(scores []float64, labels []int) (eer, threshold float64, err error) {
	fpr, tpr, thr, err := ROC(scores, labels)
	if err != nil {
		return 0, 0, fmt.Errorf("eer: %w", err)
	}
	thr[0] = thr[1] // highest score instead of +Inf
	// d = FPR - FNR grows from -1 (point 0) to +1 (last point).
	for i := 1; i < len(fpr); i++ {
		d1 := fpr[i] - (1 - tpr[i])
		if d1 < 0 {
			continue
		}
		d0 := fpr[i-1] - (1 - tpr[i-1])
		t := d0 / (d0 - d1) // d0 < 0 <= d1
		eer = fpr[i-1] + t*(fpr[i]-fpr[i-1])
		threshold = thr[i-1] + t*(thr[i]-thr[i-1])
		return eer, threshold, nil
	}
	// Unreachable: the last ROC point has FPR 1 and FNR 0.
	return 0, 0, errors.New("eer: roc curve does not cross")
}

// Accuracy returns the fraction of samples classified correctly when a
// score above thr means fake (score > thr, as the argmax of two logits
// picks real on a tie at 0.5), overall and on the real (label 0) and fake
// (label 1) samples separately. A class without samples gets NaN.
func Accuracy(scores []float64, labels []int, thr float64) (all, real, fake float64, err error) {
	if err := check(scores, labels); err != nil {
		return 0, 0, 0, fmt.Errorf("accuracy: %w", err)
	}
	var ok [2]int
	var n [2]int
	for i, s := range scores {
		pred := 0
		if s > thr {
			pred = 1
		}
		n[labels[i]]++
		if pred == labels[i] {
			ok[labels[i]]++
		}
	}
	frac := func(a, b int) float64 {
		if b == 0 {
			return math.NaN()
		}
		return float64(a) / float64(b)
	}
	return frac(ok[0]+ok[1], n[0]+n[1]), frac(ok[0], n[0]), frac(ok[1], n[1]), nil
}
