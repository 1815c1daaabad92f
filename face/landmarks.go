package face

import (
	"fmt"

	"github.com/lvnet-go/lvnet/torch"
)

// landmarkModel names face-api's 68-point landmark net.
const landmarkModel = "face_landmark_68_model"

// landmarkSize is the side of the landmark net's square input.
const landmarkSize = 112

// The per-channel (RGB) mean the landmark net subtracts before dividing by
// 255.
const meanR, meanG, meanB = 122.782, 117.001, 104.298

// denseBlock is four convolutions with dense (summed) skip connections;
// conv0 halves the resolution.
type denseBlock struct {
	conv0 []conv2d // one regular conv (first block) or depthwise+pointwise
	convs [3][2]conv2d
}

// landmarkNet is face-api's FaceLandmark68Net: four dense blocks of
// depthwise-separable convolutions (112 -> 7), a 7x7 average pool and a
// fully connected layer giving 68 (x, y) pairs relative to the input.
type landmarkNet struct {
	blocks [4]denseBlock
	fcW    *torch.Tensor // (136, 256)
	fcB    *torch.Tensor // (136)
}

func loadLandmarkNet(dir string) (*landmarkNet, error) {
	m, err := loadTFJS(dir, landmarkModel)
	if err != nil {
		return nil, err
	}
	ws := &weightSet{model: landmarkModel, m: m}
	sep := func(prefix string, stride int64) []conv2d {
		dw, k, c := ws.depthwise(prefix+"/depthwise_filter", nil)
		pw, _, out := ws.filter(prefix+"/pointwise_filter", nil)
		b := ws.tensor(ws.vector(prefix+"/bias", int(out)), out)
		return []conv2d{
			{w: dw, k: k, stride: stride, groups: c, act: actNone},
			{w: pw, b: b, k: 1, stride: 1, groups: 1, act: actNone},
		}
	}
	n := &landmarkNet{}
	for i := range n.blocks {
		p := fmt.Sprintf("dense%d", i)
		if i == 0 {
			w, k, out := ws.filter(p+"/conv0/filters", nil)
			b := ws.tensor(ws.vector(p+"/conv0/bias", int(out)), out)
			n.blocks[i].conv0 = []conv2d{{w: w, b: b, k: k, stride: 2, groups: 1, act: actNone}}
		} else {
			n.blocks[i].conv0 = sep(p+"/conv0", 2)
		}
		for j := 0; j < 3; j++ {
			s := sep(fmt.Sprintf("%s/conv%d", p, j+1), 1)
			n.blocks[i].convs[j] = [2]conv2d{s[0], s[1]}
		}
	}
	fc := ws.get("fc/weights", 256, 136)
	if fc.Data != nil {
		t := make([]float32, len(fc.Data))
		for i := 0; i < 256; i++ {
			for o := 0; o < 136; o++ {
				t[o*256+i] = fc.Data[i*136+o]
			}
		}
		n.fcW = ws.tensor(t, 136, 256)
	}
	n.fcB = ws.tensor(ws.vector("fc/bias", 136), 136)
	if ws.err != nil {
		ws.freeAll()
		return nil, ws.err
	}
	return n, nil
}

func seq(x *torch.Tensor, cs []conv2d) *torch.Tensor {
	for i := range cs {
		x = cs[i].forward(x)
	}
	return x
}

// forward maps a normalised (N, 3, 112, 112) batch to (N, 136) landmark
// coordinates relative to the input (x0, y0, x1, y1, ...).
func (n *landmarkNet) forward(x *torch.Tensor) *torch.Tensor {
	for i := range n.blocks {
		b := &n.blocks[i]
		out1 := seq(x, b.conv0).Relu()
		out2 := seq(out1, b.convs[0][:])
		in3 := out1.Add(out2).Relu()
		out3 := seq(in3, b.convs[1][:])
		sum := out1.Add(out2).Add(out3)
		in4 := sum.Relu()
		out4 := seq(in4, b.convs[2][:])
		x = sum.Add(out4).Relu()
	}
	x = x.AvgPool2d(torch.Sq(7), torch.Sq(2), torch.Sq(0)) // (N, 256, 1, 1)
	return x.Flatten(1, -1).Linear(n.fcW, n.fcB)
}

func (n *landmarkNet) free() {
	for i := range n.blocks {
		for j := range n.blocks[i].conv0 {
			n.blocks[i].conv0[j].free()
		}
		for j := range n.blocks[i].convs {
			n.blocks[i].convs[j][0].free()
			n.blocks[i].convs[j][1].free()
		}
	}
	n.fcW.Free()
	n.fcB.Free()
}
