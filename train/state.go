package train

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/optim"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/weights"
)

// position is where a run stands: the next batch to train is Batch of Epoch
// (0-based); Step counts the steps done.
type position struct {
	Epoch   int      `json:"epoch"`
	Batch   int      `json:"batch"`
	Step    int      `json:"step"`
	BestAUC float64  `json:"best_auc"`
	Run     epochRun `json:"epoch_run"` // sums over the batches of Epoch done so far
}

// epochRun sums the step statistics of the current epoch (losses weighted
// by batch size) and its training time so far.
type epochRun struct {
	Loss, LossCls, LossSeg float64
	Correct, N             int
	Seconds                float64
}

// resumeMeta is the metadata of the resume state file.
type resumeMeta struct {
	Format   string           `json:"format"`
	Position position         `json:"position"`
	Steps    map[string]int64 `json:"adam_steps"`
	Config   Config           `json:"config"`
	Train    string           `json:"train_data"`
	Val      string           `json:"val_data"`
	// World is the number of data-parallel ranks that trained (0: one
	// process); a resume needs the same, for the same data order.
	World int `json:"world,omitempty"`
}

const (
	resumeFormat = "lvnet-train-state/1"
	modelPrefix  = "model/"
	optimPrefix  = "optim/"
)

// saveResume writes the complete training state (model tensors, Adam
// moments and step counts, position, configuration) into one file,
// atomically: a crash at any point leaves the previous state intact.
func saveResume(path string, m *model.LVNet, adam *optim.Adam, cfg Config, o Options, pos position) error {
	arrs, err := m.State()
	if err != nil {
		return err
	}
	all := make(map[string]weights.Array, 3*len(arrs))
	for k, v := range arrs {
		all[modelPrefix+k] = v
	}
	ts, steps := adam.State()
	defer func() {
		for _, t := range ts {
			t.Free()
		}
	}()
	for k, t := range ts {
		a, err := model.TensorArray(t)
		if err != nil {
			return fmt.Errorf("save optimiser state %s: %w", k, err)
		}
		all[optimPrefix+k] = a
	}
	if math.IsInf(pos.BestAUC, -1) {
		pos.BestAUC = -1
	}
	rm := resumeMeta{Format: resumeFormat, Position: pos, Steps: steps, Config: cfg, Train: o.Train, Val: o.Val}
	if o.Dist != nil && o.Dist.World > 1 {
		rm.World = o.Dist.World
	}
	meta, err := json.Marshal(rm)
	if err != nil {
		return err
	}
	if err := weights.WriteSafetensors(path, all, map[string]string{"lvnet.train_state": string(meta)}); err != nil {
		return fmt.Errorf("save training state: %w", err)
	}
	return nil
}

// loadResume restores the model and optimiser from a resume state file and
// returns the position to continue from. The configuration must be the one
// the run was started with.
func loadResume(path string, m *model.LVNet, adam *optim.Adam, cfg Config, o Options) (position, error) {
	var pos position
	arrs, meta, err := weights.ReadSafetensors(path)
	if err != nil {
		return pos, fmt.Errorf("resume: %w", err)
	}
	var rm resumeMeta
	raw, ok := meta["lvnet.train_state"]
	if !ok {
		return pos, fmt.Errorf("resume: %s is not an lvnet training state (no lvnet.train_state metadata)", path)
	}
	if err := json.Unmarshal([]byte(raw), &rm); err != nil || rm.Format != resumeFormat {
		return pos, fmt.Errorf("resume: %s: unreadable training state metadata (format %q): %v", path, rm.Format, err)
	}
	a, _ := json.Marshal(rm.Config)
	b, _ := json.Marshal(cfg)
	if string(a) != string(b) {
		return pos, fmt.Errorf("resume: the configuration differs from the one %s was started with; rerun with that configuration (saved in %s)",
			filepath.Dir(path), filepath.Join(filepath.Dir(path), "config.yaml"))
	}
	world := 1
	if o.Dist != nil {
		world = o.Dist.World
	}
	if saved := max(rm.World, 1); saved != world {
		return pos, fmt.Errorf("resume: %s was saved by a run of %d rank(s); resume it with %d (WORLD_SIZE or --nproc-per-node), not %d, so that every rank sees the same samples",
			path, saved, saved, world)
	}
	if rm.Train != o.Train {
		return pos, fmt.Errorf("resume: the run was started with --data %q, not %q", rm.Train, o.Train)
	}
	mArrs := map[string]weights.Array{}
	s := torch.NewScope()
	defer s.Close()
	oTs := map[string]*torch.Tensor{}
	for k, v := range arrs {
		switch {
		case strings.HasPrefix(k, modelPrefix):
			mArrs[k[len(modelPrefix):]] = v
		case strings.HasPrefix(k, optimPrefix):
			f, err := v.Float32s()
			if err != nil {
				return pos, fmt.Errorf("resume: %s: %w", k, err)
			}
			oTs[k[len(optimPrefix):]] = torch.FromSlice(s, f, int64(len(f))).Reshape(v.Shape...).ToDevice(o.Device)
		default:
			return pos, fmt.Errorf("resume: %s: unexpected entry %q", path, k)
		}
	}
	rep, err := m.SetState(mArrs)
	if err != nil {
		return pos, fmt.Errorf("resume: %w", err)
	}
	if len(rep.Missing) > 0 {
		return pos, fmt.Errorf("resume: %s lacks %d model tensors (%s ...)", path, len(rep.Missing), rep.Missing[0])
	}
	if err := adam.LoadState(oTs, rm.Steps); err != nil {
		return pos, fmt.Errorf("resume: %w", err)
	}
	pos = rm.Position
	if pos.BestAUC < 0 {
		pos.BestAUC = math.Inf(-1)
	}
	return pos, nil
}

// initFrom loads starting weights from a checkpoint's tensors (names as the
// model's; extra or missing entries are an error).
func initFrom(m *model.LVNet, path string) error {
	arrs, _, err := weights.ReadSafetensors(path)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := m.SetState(arrs); err != nil {
		return fmt.Errorf("init from %s: %w", path, err)
	}
	return nil
}
