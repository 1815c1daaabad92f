package model

import (
	"fmt"
	"sort"

	"github.com/lvnet-go/lvnet/nn"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/weights"
)

// KeyShapes lists the model's tensors (names, shapes, dtypes) in order, for
// checking a checkpoint against it.
func (m *LVNet) KeyShapes() []weights.KeyShape {
	es := m.Store.Entries()
	out := make([]weights.KeyShape, len(es))
	for i, e := range es {
		dt := weights.F32
		if e.T.DType() == torch.Int64 {
			dt = weights.I64
		}
		out[i] = weights.KeyShape{Key: e.Name, Shape: e.T.Shape(), DType: dt}
	}
	return out
}

// SetState copies arrays into the model's tensors by name. Every name must be
// known and every shape must match; tensors of the model missing from arrs
// keep their values. It returns the comparison report (with the missing ones
// listed); the error is non-nil for unexpected or mis-shaped entries.
func (m *LVNet) SetState(arrs map[string]weights.Array) (weights.Report, error) {
	rep := weights.Check(m.KeyShapes(), arrs)
	if len(rep.Unexpected) > 0 || len(rep.Mismatched) > 0 {
		return rep, fmt.Errorf("load state: %s", rep.String())
	}
	names := make([]string, 0, len(arrs))
	for k := range arrs {
		names = append(names, k)
	}
	sort.Strings(names)
	s := torch.NewScope()
	defer s.Close()
	for _, name := range names {
		e := m.Store.Get(name)
		src, err := ArrayTensor(s, arrs[name])
		if err != nil {
			return rep, fmt.Errorf("load state: %s: %w", name, err)
		}
		if err := e.T.CopyFrom(src); err != nil {
			return rep, fmt.Errorf("load state: %s: %w", name, err)
		}
	}
	m.invalidate()
	return rep, nil
}

// ArrayTensor makes a CPU tensor of scope s from a weights.Array (float
// types become float32, integer types int64); TensorArray is the reverse.
func ArrayTensor(s *torch.Scope, a weights.Array) (*torch.Tensor, error) {
	var t *torch.Tensor
	switch a.DType {
	case weights.I64, weights.I32, weights.U8, weights.BOOL:
		v, err := a.Int64s()
		if err != nil {
			return nil, err
		}
		t = torch.FromSlice(s, v, int64(len(v)))
	default:
		v, err := a.Float32s()
		if err != nil {
			return nil, err
		}
		t = torch.FromSlice(s, v, int64(len(v)))
	}
	t = t.Reshape(a.Shape...) // also 0-dimensional shapes
	return t, t.Err()
}

// State exports every tensor of the model (CPU copies).
func (m *LVNet) State() (map[string]weights.Array, error) {
	out := make(map[string]weights.Array, len(m.Store.Entries()))
	for _, e := range m.Store.Entries() {
		a, err := TensorArray(e.T)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", e.Name, err)
		}
		out[e.Name] = a
	}
	return out, nil
}

// TensorArray copies a tensor into a weights.Array (int64 stays int64,
// everything else becomes float32).
func TensorArray(t *torch.Tensor) (weights.Array, error) {
	if t.DType() == torch.Int64 {
		v, err := t.Int64s()
		if err != nil {
			return weights.Array{}, err
		}
		return weights.FromInt64(t.Shape(), v), nil
	}
	v, err := t.Float32s()
	if err != nil {
		return weights.Array{}, err
	}
	return weights.FromFloat32(t.Shape(), v), nil
}

// Params returns the trainable tensors with their names and whether weight
// decay applies (not to biases and 1-D parameters, as the authors' timm
// add_weight_decay).
func (m *LVNet) Params() []*nn.Entry { return m.Store.Params() }
