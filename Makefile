# The two commands of the README, with the one-time libtorch set-up they need.
.PHONY: demo test setup setup-full ci

setup: .venv/torch/lib/libtorch_cpu.so .venv/gloo/include/gloo/config.h

.venv/torch/lib/libtorch_cpu.so .venv/gloo/include/gloo/config.h &:
	bash scripts/setup-libtorch.sh

setup-full:
	bash scripts/setup-libtorch.sh --full

demo: setup
	cargo run --release -- demo

test: setup
	cargo test --workspace --locked

ci: setup
	bash .ci/run
