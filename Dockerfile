# Production image for the gpu-24gb profile: the three model services and the LiveKit worker.
# Not built in CI (no Docker engine there); see README "What was and wasn't run".
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

RUN apt-get update && apt-get install -y --no-install-recommends \
        python3.12 python3.12-venv espeak-ng ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY services ./services
COPY configs ./configs
COPY latency ./latency

# App venv (agent + speech services) and vLLM's own venv, as on the cpu profile.
RUN python3.12 -m venv /app/.venv && /app/.venv/bin/pip install --no-cache-dir '.[gpu]' \
    && python3.12 -m venv /app/.venv-vllm && /app/.venv-vllm/bin/pip install --no-cache-dir vllm

ENV PATH=/app/.venv/bin:$PATH \
    HALFSEC_CACHE_DIR=/models \
    HF_HOME=/models/hf
VOLUME /models

# `halfsec services` runs the model services; run `halfsec up` (the worker) beside it with
# LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET set.
CMD ["halfsec", "services", "--profile", "gpu-24gb"]
