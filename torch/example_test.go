package torch_test

import (
	"errors"
	"fmt"

	"github.com/lvnet-go/lvnet/torch"
)

// The engine at a glance (the package documentation's example): a scope
// frees a step's tensors, operations chain, and one check at the end reports
// the first failure, with the operation that failed.
func Example() {
	s := torch.NewScope()
	defer s.Close() // frees every tensor made in the scope
	data := make([]float32, 1*3*8*8)
	for i := range data {
		data[i] = float32(i%7) / 7
	}
	x := torch.FromSlice(s, data, 1, 3, 8, 8)
	w := torch.Ones(s, 4, 3, 3, 3)
	y := x.Conv2d(w, nil, torch.Conv{Stride: torch.Sq(2), Padding: torch.Sq(1)}).Relu()
	if err := y.Err(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(y.Shape())

	// A weight with 2 input channels for a 3-channel input: the convolution
	// fails, and so does everything computed from it, with the same error.
	bad := x.Conv2d(torch.Ones(s, 4, 2, 3, 3), nil, torch.Conv{}).Relu().Sum(false)
	var te *torch.Error
	if errors.As(bad.Err(), &te) {
		fmt.Println("failed in", te.Op)
	}
	// Output:
	// [1 4 4 4]
	// failed in conv2d
}
