# syntax=docker/dockerfile:1
# The Parakeet worker for RunPod serverless.
#
#   docker build -t parakeet-worker .                          # small image: torch + NeMo on the volume
#   docker build --build-arg BAKE_ENVIRONMENT=1 -t parakeet-worker:env .                  # + torch, NeMo
#   docker build --build-arg BAKE_ENVIRONMENT=1 --build-arg BAKE_MODEL=1 -t parakeet-worker:full .
#
# By default the image holds only the light requirements (requirements.txt) and ffmpeg; bootstrap.py
# builds torch + NeMo on the network volume on first need. BAKE_ENVIRONMENT=1 installs them into the
# image's own interpreter instead (bootstrap is then skipped, because NeMo imports), and BAKE_MODEL=1
# adds the model file: faster cold starts for a much larger image (about 6 GB and 2.5 GB more).

# Which optional stages end up in the image; "0" or "1".
ARG BAKE_ENVIRONMENT=0
ARG BAKE_MODEL=0

# Base: Debian 12 slim with Python 3.11, the interpreter CI tests with. No CUDA base image: the CUDA
# builds of torch bring their own CUDA user-space libraries (cuBLAS, cuDNN, NVRTC, NCCL as nvidia-*
# wheels) and the NVIDIA container runtime mounts the host's driver into any image, so a CUDA base
# would add gigabytes that nothing loads. Driver compatibility is chosen per endpoint instead (allowed
# CUDA versions, .runpod/hub.json). Bootstrap keys the volume environment by the Python version, so
# changing the version here makes the first start build a new environment (the old one stays usable
# for workers still on the old image).
FROM python:3.11.14-slim-bookworm AS base

# RUNPOD_LOG_LEVEL=INFO: at the SDK's default (DEBUG) it logs every handler output, transcripts included.
# The NVIDIA variables ask the container runtime for the GPU and its compute libraries on any host.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RUNPOD_LOG_LEVEL=INFO \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# ffmpeg is not version-pinned: Debian's security updates replace old versions in the archive, so a
# pin would break the build rather than keep it reproducible; bookworm stays on ffmpeg 5.1.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

# --- BAKE_ENVIRONMENT: torch and NeMo in the image's interpreter ---------------------------------------
FROM base AS environment-0

FROM base AS environment-1
# requirements-volume.txt names torch's CUDA build and its index. The container's packages are pinned
# as bootstrap pins them, so that NeMo cannot replace the numpy (and the rest) the handler imports.
COPY requirements-volume.txt ./
RUN pip freeze > /tmp/container-constraints.txt \
    && pip install -c /tmp/container-constraints.txt -r requirements-volume.txt \
    && rm /tmp/container-constraints.txt \
    && python -c "import nemo.collections.asr"

# --- BAKE_MODEL: the .nemo file in the image; PARAKEET_MODEL points at it ------------------------------
# hadolint ignore=DL3006
FROM environment-${BAKE_ENVIRONMENT} AS model-0

# hadolint ignore=DL3006
FROM environment-${BAKE_ENVIRONMENT} AS model-1
ARG MODEL_REPO=nvidia/parakeet-tdt-0.6b-v3
ARG MODEL_REVISION=main
# `hf` comes with huggingface_hub (requirements.txt). NVIDIA's repos hold the model as <name>.nemo, so
# the file lands at /models/<org>/<name>.nemo, which is /models/${MODEL_REPO}.nemo.
RUN hf download "${MODEL_REPO}" "${MODEL_REPO##*/}.nemo" --revision "${MODEL_REVISION}" \
        --local-dir "/models/${MODEL_REPO%/*}" \
    && rm -rf "/models/${MODEL_REPO%/*}/.cache"
ENV PARAKEET_MODEL=/models/${MODEL_REPO}.nemo

# --- The worker -------------------------------------------------------------------------------------
# hadolint ignore=DL3006
FROM model-${BAKE_MODEL} AS worker
# Root, as RunPod runs workers: the network volume is mounted root-owned and bootstrap writes to it.
WORKDIR /app
COPY *.py requirements-volume.txt test_input.json ./
COPY utils/ utils/
# The HTTP server's port (server.py, for load-balancing endpoints and self-hosting); the queue worker
# (the default command) listens on nothing.
EXPOSE 8000
CMD ["python", "-u", "handler.py"]
