package model

import "github.com/lvnet-go/lvnet/torch"

// scoped runs f on inputs brought into a child scope of the first input's
// scope and returns f's results, freeing every intermediate f made: blocks
// release their temporaries as soon as they finish (torch.Scope.Child).
func scoped(f func(in []*torch.Tensor) []*torch.Tensor, in ...*torch.Tensor) []*torch.Tensor {
	return in[0].Scope().Child(func(c *torch.Scope) []*torch.Tensor { return f(c.Use(in...)) })
}

// scoped1 is scoped for one input and one result.
func scoped1(x *torch.Tensor, f func(x *torch.Tensor) *torch.Tensor) *torch.Tensor {
	return scoped(func(in []*torch.Tensor) []*torch.Tensor { return []*torch.Tensor{f(in[0])} }, x)[0]
}
