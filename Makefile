# LVNet in Go. `make demo` and `make test` install what is missing (Debian 12),
# build and run. TORCH_DIR=/path/to/libtorch builds against an official
# libtorch distribution (CPU or CUDA) instead of Debian's libtorch-dev.
SHELL := /bin/bash
GO ?= go
BUILD := build
TORCH_DIR ?=
# Debian packages: libtorch and Gloo's headers (unless TORCH_DIR), OpenBLAS for fast linear layers
# (the reference BLAS is 5-10x slower), ffmpeg for videos, npm to fetch the face
# models, Chromium + chromedriver for the web page test.
DEB_PKGS := libopenblas0-pthread ffmpeg g++ chromium chromium-driver $(if $(TORCH_DIR),,libtorch-dev libgloo-dev)

ifeq ($(TORCH_DIR),)
TORCH_CFLAGS := -I/usr/include/torch/csrc/api/include
TORCH_LDFLAGS :=
else
TORCH_CFLAGS := -I$(TORCH_DIR)/include -I$(TORCH_DIR)/include/torch/csrc/api/include \
  -D_GLIBCXX_USE_CXX11_ABI=$(shell grep -q 'GLIBCXX_USE_CXX11_ABI=0' $(TORCH_DIR)/share/cmake/Torch/TorchConfig.cmake 2>/dev/null && echo 0 || echo 1)
TORCH_LDFLAGS := -L$(TORCH_DIR)/lib -Wl,-rpath,$(TORCH_DIR)/lib \
  $(if $(wildcard $(TORCH_DIR)/lib/libtorch_cuda.so),-Wl,--no-as-needed -ltorch_cuda -ltorch -Wl,--as-needed)
endif

SHIM_LIB := $(BUILD)/liblvshim.a
export CGO_LDFLAGS := $(TORCH_LDFLAGS)
# Relink Go binaries whenever the shim changes (go's cache does not see .a files).
SHIM_ID = $(shell sha1sum $(SHIM_LIB) 2>/dev/null | cut -c1-12)
GOFLAGS_LD = -ldflags "-X github.com/lvnet-go/lvnet/torch.shimID=$(SHIM_ID)"

.PHONY: all deps build shim demo test bench vet clean

all: build

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@scripts/fetch-face-models.sh

# The shim: the C API (lvshim.cpp), the caching allocator (allocator.cpp), MPFF's
# fused autograd op (mpff.cpp) and its kernels (mpff_kernel.cpp), c10d (dist.cpp).
SHIM_OBJS := $(addprefix $(BUILD)/,lvshim.o allocator.o mpff.o mpff_kernel.o dist.o)

$(BUILD)/lvshim.o: csrc/lvshim.h csrc/allocator.h csrc/mpff.h csrc/dist.h
$(BUILD)/dist.o: csrc/dist.h

# c10d (dist.cpp): csrc/compat stands in for a header Debian's libtorch-dev
# lacks; NCCL=1 (with a CUDA TORCH_DIR) adds the NCCL process group.
$(BUILD)/dist.o: csrc/dist.cpp
	@mkdir -p $(BUILD)
	g++ -O2 -std=c++17 -fPIC $(TORCH_CFLAGS) -idirafter csrc/compat $(if $(NCCL),-DLVSHIM_NCCL -DUSE_C10D_NCCL) -c $< -o $@
$(BUILD)/allocator.o: csrc/allocator.h
$(BUILD)/mpff.o: csrc/mpff.h csrc/mpff_kernel.h

$(BUILD)/%.o: csrc/%.cpp
	@mkdir -p $(BUILD)
	g++ -O2 -std=c++17 -fPIC $(TORCH_CFLAGS) -c $< -o $@

# The MPFF kernels: AVX2/FMA with glibc's vector tanhf (libmvec); mpff.cpp only
# calls them on CPUs that have both.
$(BUILD)/mpff_kernel.o: csrc/mpff_kernel.cpp csrc/mpff_kernel.h
	@mkdir -p $(BUILD)
	g++ -O3 -ffast-math -mavx2 -mfma -fopenmp-simd -fPIC -c $< -o $@

$(SHIM_LIB): $(SHIM_OBJS)
	rm -f $@
	ar rcs $@ $^

shim: $(SHIM_LIB)

# staticcheck (honnef.co/go/tools) at a pinned version, installed into build/
# on first use; a new version gets its own folder.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BUILD)/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck
$(STATICCHECK):
	GOBIN=$(abspath $(dir $@)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# The static checks: go vet and staticcheck over every package.
vet: deps $(SHIM_LIB) $(STATICCHECK)
	$(GO) vet ./...
	$(STATICCHECK) ./...

build: deps $(SHIM_LIB)
	$(GO) build $(GOFLAGS_LD) -o bin/lvnet ./cmd/lvnet

# Two photos from Debian packages (extracted, not installed): scikit-image's
# astronaut and facedetect's Grace Hopper, cached in build/demo.
DEMO := $(BUILD)/demo
DEMO_PHOTOS := $(DEMO)/astronaut.png $(DEMO)/grace_hopper_512x512.jpg
deb_file = @mkdir -p $(DEMO)/deb && cd $(DEMO)/deb && rm -f $(1)_*.deb && \
	{ apt-get download $(1) 2>/dev/null || { $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq && apt-get download $(1); }; } && \
	dpkg-deb --fsys-tarfile $(1)_*.deb | tar -xO .$(2) > ../$(notdir $(2)).tmp && mv ../$(notdir $(2)).tmp ../$(notdir $(2)) && rm -f $(1)_*.deb

$(DEMO)/astronaut.png:
	$(call deb_file,python3-skimage,/usr/lib/python3/dist-packages/skimage/data/astronaut.png)
$(DEMO)/grace_hopper_512x512.jpg:
	$(call deb_file,facedetect,/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg)

demo: build $(DEMO_PHOTOS)
	./bin/lvnet version
	./bin/lvnet demo --out $(DEMO) $(DEMO_PHOTOS)

# The fuzz target reading whole torch.save files (zip, pickle, storages) runs
# for 10 s; the other fuzz targets run their seeds with the tests.
test: deps $(SHIM_LIB) vet
	$(GO) test $(GOFLAGS_LD) -count=1 -timeout 60m ./...
	$(GO) test $(GOFLAGS_LD) -run '^$$' -fuzz '^FuzzReadTorchArchive$$' -fuzztime 10s ./weights/

bench: deps $(SHIM_LIB)
	$(GO) test $(GOFLAGS_LD) -run '^$$' -bench . -benchtime 3x ./torch/

clean:
	rm -rf $(BUILD) bin
