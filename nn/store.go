// Package nn provides named parameters and the layers LVNet is built from
// (convolution, batch norm, linear), on the torch engine.
//
// A Store holds every tensor of a model under its checkpoint name, in
// registration order; a Path is a name prefix inside a store, so layers are
// created as nn.NewConv2d(p.Sub("conv1"), ...) and their tensors are named
// like the authors' PyTorch state-dict keys ("xception_rgb.model.conv1.weight").
package nn

import (
	"fmt"
	"math"
	"strings"

	"github.com/lvnet-go/lvnet/torch"
)

// Kind tells trained parameters from buffers (running statistics, counters,
// fixed filters).
type Kind int

// Kinds of stored tensors.
const (
	Param  Kind = iota // trained by the optimiser
	Buffer             // state that is saved but not trained
)

// Entry is one named tensor of a store.
type Entry struct {
	Name  string
	T     *torch.Tensor
	Kind  Kind
	Decay bool // weight decay applies (weights of 2+ dimensions, as timm's add_weight_decay)
}

// Store owns a model's tensors. It is not safe for concurrent mutation;
// concurrent forward passes only read it.
type Store struct {
	entries []*Entry
	byName  map[string]*Entry
	convBNs []*ConvBN
	gen     *torch.Generator
	err     error
}

// NewStore returns an empty store whose initialisers draw from a generator
// seeded with seed.
func NewStore(seed uint64) *Store {
	g, err := torch.NewGenerator(seed)
	return &Store{byName: map[string]*Entry{}, gen: g, err: err}
}

// Err returns the first error met while creating tensors.
func (s *Store) Err() error { return s.err }

// Root returns the path with no prefix.
func (s *Store) Root() Path { return Path{s: s} }

// Entries returns the entries in registration order.
func (s *Store) Entries() []*Entry { return s.entries }

// Get returns the entry with the given name, or nil.
func (s *Store) Get(name string) *Entry { return s.byName[name] }

// Params returns the trainable entries in registration order.
func (s *Store) Params() []*Entry {
	var out []*Entry
	for _, e := range s.entries {
		if e.Kind == Param {
			out = append(out, e)
		}
	}
	return out
}

// ConvBNs returns the conv+BatchNorm layers made on the store's tensors
// (NewConvBN), in creation order: the layers a model folds for inference.
func (s *Store) ConvBNs() []*ConvBN { return s.convBNs }

// Free releases every tensor of the store, and the folded copies of its
// conv+BatchNorm layers.
func (s *Store) Free() {
	for _, c := range s.convBNs {
		c.Unfold()
	}
	for _, e := range s.entries {
		e.T.Free()
	}
	s.gen.Close()
}

func (s *Store) add(name string, t *torch.Tensor, kind Kind) *torch.Tensor {
	if s.err == nil {
		if err := t.Err(); err != nil {
			s.err = fmt.Errorf("create %s: %w", name, err)
		} else if _, dup := s.byName[name]; dup {
			s.err = fmt.Errorf("duplicate tensor name %s", name)
		}
	}
	if kind == Param {
		t = t.SetRequiresGrad(true)
	}
	e := &Entry{Name: name, T: t, Kind: kind, Decay: kind == Param && t.Dim() >= 2}
	s.entries = append(s.entries, e)
	s.byName[name] = e
	return t
}

// Path is a name prefix inside a store.
type Path struct {
	s      *Store
	prefix string
}

// Sub returns the path prefix.name.
func (p Path) Sub(name string) Path {
	if p.prefix == "" {
		return Path{s: p.s, prefix: name}
	}
	return Path{s: p.s, prefix: p.prefix + "." + name}
}

// Subf is Sub with a formatted name.
func (p Path) Subf(format string, args ...any) Path { return p.Sub(fmt.Sprintf(format, args...)) }

// Name returns the full name of a tensor called name under this path.
func (p Path) Name(name string) string {
	if p.prefix == "" {
		return name
	}
	return p.prefix + "." + name
}

// Store returns the store of the path.
func (p Path) Store() *Store { return p.s }

// Param creates a trainable tensor initialised by init.
func (p Path) Param(name string, init Init, shape ...int64) *torch.Tensor {
	return p.s.add(p.Name(name), init.make(p.s.gen, shape), Param)
}

// Buffer creates a saved, untrained tensor initialised by init.
func (p Path) Buffer(name string, init Init, shape ...int64) *torch.Tensor {
	return p.s.add(p.Name(name), init.make(p.s.gen, shape), Buffer)
}

// BufferFrom stores t (already made) as a buffer.
func (p Path) BufferFrom(name string, t *torch.Tensor) *torch.Tensor {
	return p.s.add(p.Name(name), t, Buffer)
}

// Init describes how a new tensor is filled.
type Init struct {
	kind  int // 0 const, 1 uniform(-b, b), 2 int64 const
	value float64
}

// Const fills with v.
func Const(v float64) Init { return Init{kind: 0, value: v} }

// Uniform draws from U(-b, b).
func Uniform(b float64) Init { return Init{kind: 1, value: b} }

// Counter is an int64 zero (num_batches_tracked).
func Counter() Init { return Init{kind: 2} }

// KaimingUniform is PyTorch's default for conv and linear weights
// (kaiming_uniform_ with a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
func KaimingUniform(fanIn int64) Init { return Uniform(1 / math.Sqrt(float64(fanIn))) }

func (in Init) make(g *torch.Generator, shape []int64) *torch.Tensor {
	switch in.kind {
	case 1:
		sc := torch.NewScope()
		defer sc.Close()
		return torch.Rand(sc, g, shape...).MulScalar(2 * in.value).SubScalar(in.value).Keep()
	case 2:
		return torch.Full(nil, 0, torch.Int64, torch.CPU, shape...)
	}
	return torch.Full(nil, in.value, torch.Float32, torch.CPU, shape...)
}

// HasPrefix reports whether name lies under prefix (as a dotted path).
func HasPrefix(name, prefix string) bool {
	return name == prefix || strings.HasPrefix(name, prefix+".")
}

// To converts every floating-point tensor of the store to dtype dt on device
// dev, in place (layers keep their tensor pointers); integer buffers only
// move. Trainable tensors stay leaves that require grad.
func (s *Store) To(dt torch.DType, dev torch.Device) error {
	for _, e := range s.entries {
		want := dt
		if k := e.T.DType(); k == torch.Int64 || k == torch.Int32 || k == torch.Uint8 || k == torch.Bool {
			want = k
		}
		if e.T.DType() == want && e.T.Device() == dev {
			continue
		}
		d := e.T.Detach()
		u := d.To(want, dev)
		d.Free()
		if e.Kind == Param {
			u = u.SetRequiresGrad(true)
		}
		if err := e.T.Assign(u); err != nil {
			return fmt.Errorf("convert %s to %v on %v: %w", e.Name, want, dev, err)
		}
	}
	return nil
}
