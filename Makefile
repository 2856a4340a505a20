# Two commands for a newcomer on a fresh Linux machine (see README.md):
#   make demo   install into .venv, train SeqGAN on the built-in oracle, print the curve and samples
#   make test   install into .venv (with test tools) and run the tests
# torch==2.13.0 (the CPU build) is installed before the package, so that pip never pulls CUDA wheels.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.seqgan-installed
DEMO_OUT ?= runs/demo

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

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/adversarial_step.py
