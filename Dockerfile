# seed-trader: the live worker and the control panel on one always-on machine.
#   docker build -t seed-trader:cpu .
#   docker build -t seed-trader:cuda \
#       --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 \
#       --build-arg TORCH_INDEX=https://pypi.org/simple .     # PyPI's Linux torch is the CUDA build
#   docker run --rm seed-trader:cpu python -m app --help
# Used by docker-compose.yml. Never built here (no Docker daemon on the dev machines).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# CPU wheels by default: the image stays ~1 GB instead of several.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    NUMBA_CACHE_DIR=/tmp/numba \
    PATH=/opt/venv/bin:$PATH

# python:3.11-slim has python3.11; the CUDA (Ubuntu 22.04) base gets it from apt.
RUN if ! command -v python3.11 >/dev/null; then \
        apt-get update -q && apt-get install -y -q --no-install-recommends \
            python3.11 python3.11-venv ca-certificates && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3.11 -m venv /opt/venv \
    && /opt/venv/bin/pip install -q -U pip \
    && useradd --create-home --uid 10001 trader \
    && mkdir -p /data/store /data/registry /data/live && chown -R trader /data

WORKDIR /opt/seed-trader
# As the README: torch first, in a call of its own, then the project.
RUN pip install -q "torch==2.13.0" --index-url ${TORCH_INDEX}
COPY pyproject.toml README.md ./
COPY app ./app
COPY ui ./ui
COPY configs ./configs
RUN pip install -q -e .

# The store and the model registry live on volumes (docker-compose.yml names them).
ENV APP_STORE_URL=duckdb:////data/store/store.db \
    APP_REGISTRY_DIR=/data/registry
VOLUME ["/data/store", "/data/registry", "/data/live"]
USER trader
EXPOSE 8000 7860
CMD ["python", "-m", "app", "--help"]
