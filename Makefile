# Two commands for a newcomer on a fresh Linux machine (see README.md):
#   make demo   install into .venv, train SeqGAN on the built-in oracle, print the curve and samples
#   make test   install into .venv (with test tools) and run the tests
# torch==2.13.0 (the CPU build) is installed before the package, so that pip never pulls CUDA wheels.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.seqgan-installed
DEMO_OUT ?= runs/demo
# Test processes (pytest-xdist), one per core this process may use; each runs torch on 1 thread
# (tests/conftest.py). TEST_WORKERS=0 runs the suite in this process, one test after another.
TEST_WORKERS ?= $(shell nproc 2> /dev/null || echo 1)

.PHONY: demo test install bench clean-demo

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_OUT)
	$(VENV)/bin/seqgan train configs/demo.yaml --out $(DEMO_OUT)
	$(VENV)/bin/seqgan plot $(DEMO_OUT) --table
	@echo "== five samples (token ids of the built-in oracle's vocabulary)"
	$(VENV)/bin/seqgan sample $(DEMO_OUT) -n 5
	@echo "== the MLE start against the end of SeqGAN, at three sampling temperatures (2,000 samples each)"
	$(VENV)/bin/seqgan sweep $(DEMO_OUT)@mle $(DEMO_OUT) --labels MLE SeqGAN --temperatures 0.8,0.9,1.0 -n 2000 --out $(DEMO_OUT)/sweep --table
	@echo "How to read it. nll_oracle: how unlikely G's samples are under the true model (the oracle): lower"
	@echo "means more realistic samples. nll_test: how unlikely held-out real sequences are under G: lower"
	@echo "means G covers more of the real data. SeqGAN at temperature 1.0 should sit below its MLE start on"
	@echo "nll_oracle (better samples) and above it on nll_test (less coverage). Lowering MLE's temperature"
	@echo "makes the same trade: where MLE at 0.8-0.9 matches SeqGAN's nll_oracle, SeqGAN's gain is mostly"
	@echo "a sharper, less diverse G. Curves: $(DEMO_OUT)/curves.png, the sweep: $(DEMO_OUT)/sweep/sweep.png."

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS)

bench: $(STAMP)
	$(PY) bench/adversarial_step.py
