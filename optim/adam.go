// Package optim provides the optimiser and learning-rate schedule used to
// train LVNet: Adam exactly as torch.optim.Adam (with L2 weight decay on the
// chosen parameters, as timm's add_weight_decay sets it up) and StepLR as
// torch.optim.lr_scheduler.StepLR.
package optim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/lvnet-go/lvnet/torch"
)

// Param is one trainable tensor: a leaf that requires grad. Decay selects L2
// weight decay for it.
type Param struct {
	Name  string
	T     *torch.Tensor
	Decay bool
}

// NewParam names t and sets Decay by timm's add_weight_decay rule: no decay
// for 1-D tensors (biases, batch-norm weights) and for names ending in ".bias".
func NewParam(name string, t *torch.Tensor) Param {
	return Param{Name: name, T: t, Decay: DecayByDefault(name, t.Shape())}
}

// DecayByDefault reports whether timm's add_weight_decay puts a parameter of
// this name and shape in the decayed group.
func DecayByDefault(name string, shape []int64) bool {
	return len(shape) != 1 && !strings.HasSuffix(name, ".bias")
}

// AdamConfig holds Adam's hyper-parameters. Zero Beta1, Beta2 and Eps take
// torch's defaults (0.9, 0.999, 1e-8). WeightDecay applies to Decay params only.
type AdamConfig struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
}

func (c AdamConfig) withDefaults() AdamConfig {
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	return c
}

func (c AdamConfig) validate() error {
	switch {
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("learning rate %v: want a positive number", c.LR)
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("beta1 %v: want 0 <= beta1 < 1", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("beta2 %v: want 0 <= beta2 < 1", c.Beta2)
	case !(c.Eps >= 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("eps %v: want a non-negative number", c.Eps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("weight decay %v: want a non-negative number", c.WeightDecay)
	}
	return nil
}

// Adam is torch.optim.Adam (amsgrad and maximize off): for each parameter
// with a gradient g, t += 1; g += wd*p (Decay params); m = b1*m + (1-b1)*g;
// v = b2*v + (1-b2)*g²; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
// Parameters without a gradient are skipped and keep no state, as in torch.
// One Step is a single call into libtorch (torch.AdamStep). An Adam is not
// safe for concurrent use.
type Adam struct {
	cfg    AdamConfig
	params []Param
	index  map[string]int
	m, v   []*torch.Tensor // moment buffers; nil until the first step with a gradient
	steps  []int64
}

// NewAdam returns an Adam over params, which must have unique non-empty names
// and be valid floating-point tensors.
func NewAdam(params []Param, cfg AdamConfig) (*Adam, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("adam: %w", err)
	}
	a := &Adam{
		cfg:    cfg,
		params: slices.Clone(params),
		index:  make(map[string]int, len(params)),
		m:      make([]*torch.Tensor, len(params)),
		v:      make([]*torch.Tensor, len(params)),
		steps:  make([]int64, len(params)),
	}
	for i, p := range params {
		if p.Name == "" {
			return nil, fmt.Errorf("adam: parameter %d has no name", i)
		}
		if _, dup := a.index[p.Name]; dup {
			return nil, fmt.Errorf("adam: parameter name %q used twice", p.Name)
		}
		if err := p.T.Err(); err != nil {
			return nil, fmt.Errorf("adam: parameter %s: %w", p.Name, err)
		}
		if dt := p.T.DType(); dt != torch.Float32 && dt != torch.Float64 && dt != torch.Float16 && dt != torch.BFloat16 {
			return nil, fmt.Errorf("adam: parameter %s has element type %v: want a floating-point tensor", p.Name, dt)
		}
		a.index[p.Name] = i
	}
	return a, nil
}

// Params returns the parameters in the order given to NewAdam.
func (a *Adam) Params() []Param { return slices.Clone(a.params) }

// LR returns the current learning rate.
func (a *Adam) LR() float64 { return a.cfg.LR }

// SetLR changes the learning rate for the following steps (as writing
// param_group["lr"]; a scheduler calls it once per epoch).
func (a *Adam) SetLR(lr float64) { a.cfg.LR = lr }

// Config returns the hyper-parameters in use (defaults filled in).
func (a *Adam) Config() AdamConfig { return a.cfg }

// Step applies one update to every parameter that has a gradient. On error
// no step count advances.
func (a *Adam) Step() error {
	var ps, ms, vs []*torch.Tensor
	var steps []int64
	var wd []float64
	var which []int
	for i, p := range a.params {
		g := p.T.Grad()
		if g == nil {
			continue
		}
		err := g.Err()
		g.Free()
		if err != nil {
			return fmt.Errorf("adam: parameter %s: %w", p.Name, err)
		}
		if a.m[i] == nil {
			m, v := p.T.ZerosLike().Keep(), p.T.ZerosLike().Keep()
			if err := errors.Join(m.Err(), v.Err()); err != nil {
				m.Free()
				v.Free()
				return fmt.Errorf("adam: state of %s: %w", p.Name, err)
			}
			a.m[i], a.v[i] = m, v
		}
		ps = append(ps, p.T)
		ms = append(ms, a.m[i])
		vs = append(vs, a.v[i])
		steps = append(steps, a.steps[i]+1)
		d := 0.0
		if p.Decay {
			d = a.cfg.WeightDecay
		}
		wd = append(wd, d)
		which = append(which, i)
	}
	if len(ps) == 0 {
		return nil
	}
	c := a.cfg
	if err := torch.AdamStep(ps, ms, vs, steps, wd, c.LR, c.Beta1, c.Beta2, c.Eps); err != nil {
		return fmt.Errorf("adam step: %w", err)
	}
	for k, i := range which {
		a.steps[i] = steps[k]
	}
	return nil
}

// ZeroGrad drops every parameter's gradient (zero_grad(set_to_none=True)).
func (a *Adam) ZeroGrad() {
	for _, p := range a.params {
		_ = p.T.ZeroGrad() // a freed parameter reports its error at Step
	}
}

// State key prefixes, as torch's state_dict entries.
const (
	ExpAvgPrefix   = "exp_avg."
	ExpAvgSqPrefix = "exp_avg_sq."
)

// State returns copies of the moment buffers, keyed "exp_avg.<name>" and
// "exp_avg_sq.<name>", and the step count of each parameter that has state
// (those that have had a gradient at some step). The tensors belong to the
// caller (Free them, or move them into a scope with In).
func (a *Adam) State() (map[string]*torch.Tensor, map[string]int64) {
	ts := make(map[string]*torch.Tensor)
	steps := make(map[string]int64)
	for i, p := range a.params {
		if a.m[i] == nil {
			continue
		}
		ts[ExpAvgPrefix+p.Name] = a.m[i].Clone().Keep()
		ts[ExpAvgSqPrefix+p.Name] = a.v[i].Clone().Keep()
		steps[p.Name] = a.steps[i]
	}
	return ts, steps
}

// LoadState replaces the optimiser state with one from State (for example
// read back from a checkpoint). Every name must belong to a parameter, each
// parameter in steps needs both buffers with the parameter's shape and a
// positive step count, and every buffer needs a step count. The tensors are
// copied (converted to the parameter's element type); the caller keeps them.
// Parameters absent from steps start afresh. On error the state is unchanged.
func (a *Adam) LoadState(tensors map[string]*torch.Tensor, steps map[string]int64) error {
	var problems []string
	for name, st := range steps {
		if _, ok := a.index[name]; !ok {
			problems = append(problems, fmt.Sprintf("step count for unknown parameter %q", name))
		} else if st <= 0 {
			problems = append(problems, fmt.Sprintf("step count %d for %s: want a positive count", st, name))
		}
	}
	for key, t := range tensors {
		var name string
		switch {
		case strings.HasPrefix(key, ExpAvgSqPrefix):
			name = key[len(ExpAvgSqPrefix):]
		case strings.HasPrefix(key, ExpAvgPrefix):
			name = key[len(ExpAvgPrefix):]
		default:
			problems = append(problems, fmt.Sprintf("entry %q is neither %s<name> nor %s<name>", key, ExpAvgPrefix, ExpAvgSqPrefix))
			continue
		}
		i, ok := a.index[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("entry %q: no parameter named %q", key, name))
			continue
		}
		if _, ok := steps[name]; !ok {
			problems = append(problems, fmt.Sprintf("entry %q has no step count", key))
		}
		if err := t.Err(); err != nil {
			problems = append(problems, fmt.Sprintf("entry %q: %v", key, err))
		} else if got, want := t.Shape(), a.params[i].T.Shape(); !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("entry %q has shape %v, parameter %s has %v", key, got, name, want))
		}
	}
	for name := range steps {
		if _, ok := a.index[name]; !ok {
			continue
		}
		for _, pre := range []string{ExpAvgPrefix, ExpAvgSqPrefix} {
			if _, ok := tensors[pre+name]; !ok {
				problems = append(problems, fmt.Sprintf("parameter %s has a step count but no %s%s entry", name, pre, name))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("adam: load state: %s", strings.Join(problems, "; "))
	}
	m := make([]*torch.Tensor, len(a.params))
	v := make([]*torch.Tensor, len(a.params))
	st := make([]int64, len(a.params))
	freeAll := func() {
		for i := range m {
			m[i].Free()
			v[i].Free()
		}
	}
	for name, n := range steps {
		i := a.index[name]
		p := a.params[i].T
		m[i] = copyLike(tensors[ExpAvgPrefix+name], p)
		v[i] = copyLike(tensors[ExpAvgSqPrefix+name], p)
		st[i] = n
		if err := errors.Join(m[i].Err(), v[i].Err()); err != nil {
			freeAll()
			return fmt.Errorf("adam: load state of %s: %w", name, err)
		}
	}
	a.Close()
	a.m, a.v, a.steps = m, v, st
	return nil
}

// Close frees the moment buffers; the optimiser then starts afresh.
func (a *Adam) Close() {
	for i := range a.m {
		a.m[i].Free()
		a.v[i].Free()
		a.m[i], a.v[i] = nil, nil
		a.steps[i] = 0
	}
}

// copyLike returns a copy of x with p's element type and device, owned by no
// scope. (To alone may share x's storage when nothing changes.)
func copyLike(x, p *torch.Tensor) *torch.Tensor {
	c := x.To(p.DType(), p.Device())
	defer c.Free()
	return c.Clone().Keep()
}
