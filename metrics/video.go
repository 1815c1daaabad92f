package metrics

import "fmt"

// GroupMean averages frame scores per group (video): vscores[k] is the mean
// score of the k-th group in order of first appearance and vlabels[k] its
// label. All frames of a group must share one label.
func GroupMean(scores []float64, labels []int, groups []string) (vscores []float64, vlabels []int, err error) {
	if err := check(scores, labels); err != nil {
		return nil, nil, fmt.Errorf("group mean: %w", err)
	}
	if len(groups) != len(scores) {
		return nil, nil, fmt.Errorf("group mean: %d scores but %d groups", len(scores), len(groups))
	}
	at := make(map[string]int)
	var n []int
	for i, g := range groups {
		k, seen := at[g]
		if !seen {
			k = len(vscores)
			at[g] = k
			vscores = append(vscores, 0)
			vlabels = append(vlabels, labels[i])
			n = append(n, 0)
		} else if vlabels[k] != labels[i] {
			return nil, nil, fmt.Errorf("group mean: video %q has frames labelled %d and %d", g, vlabels[k], labels[i])
		}
		vscores[k] += scores[i]
		n[k]++
	}
	for k := range vscores {
		vscores[k] /= float64(n[k])
	}
	return vscores, vlabels, nil
}

// VideoAUC is the ROC AUC of the per-video mean frame scores (see GroupMean
// and AUC).
func VideoAUC(scores []float64, labels []int, groups []string) (float64, error) {
	vs, vl, err := GroupMean(scores, labels, groups)
	if err != nil {
		return 0, fmt.Errorf("video auc: %w", err)
	}
	auc, err := AUC(vs, vl)
	if err != nil {
		return 0, fmt.Errorf("video auc: %w", err)
	}
	return auc, nil
}
