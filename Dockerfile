# The pipeline in a fixed environment: `docker build -t harness . && docker run -v "$PWD/outputs:/app/outputs" \
#   -v "$PWD/store:/app/store" harness reproduce`. Dependencies come from the hashed lock file.
# Pinning the base image by digest is tracked in the "Share and reproduce" issue.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DVC_NO_ANALYTICS=1

# A compiler and cmake: llama-cpp-python (the embedded model's server) builds from source.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 harness
WORKDIR /app

COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md ./
COPY harness/ harness/
RUN pip install --no-deps .

COPY dvc.yaml dvc.lock params.yaml ./
COPY .dvc/config .dvc/config
COPY outputs/ outputs/
COPY store/ store/
# No git inside the image: DVC runs without an SCM here.
RUN printf '[core]\n    no_scm = true\n' > .dvc/config.local \
 && chown -R harness:harness /app

USER harness
VOLUME ["/app/outputs", "/app/store"]
ENTRYPOINT ["harness"]
CMD ["reproduce"]
