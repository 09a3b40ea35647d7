# syntax=docker/dockerfile:1
#
# detectflow web app for Cloud Run: `detectflow up --gcp` serves the page and the REST API
# against Cloud Storage; the pipeline itself runs as Cloud Run functions (infra/terraform).
# Build from the repository root (it needs detectflow/ and frontend/):
#
#   docker build -f infra/web.Dockerfile -t REGION-docker.pkg.dev/PROJECT/detectflow/web:TAG .
#
# Configuration comes from the environment Terraform sets (GOOGLE_CLOUD_PROJECT,
# DETECTFLOW_*_BUCKET, ...); credentials from the service's own service account. No model is
# baked in: the pipeline serves the one published to the models bucket.

FROM python:3.12-slim-bookworm

LABEL org.opencontainers.image.title="detectflow-web" \
      org.opencontainers.image.description="detectflow web app and REST API (Cloud Storage backend)" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PORT=8080

RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin detectflow

WORKDIR /opt/detectflow
COPY pyproject.toml README.md ./
COPY detectflow/ detectflow/
COPY frontend/ frontend/

# DL3013 (pin versions): this installs the project itself; its dependency bounds live in
# pyproject.toml. The `cloud` extra brings the Cloud Storage and Pub/Sub clients.
# hadolint ignore=DL3013
RUN python -m pip install --no-cache-dir ".[cloud]" \
 && detectflow up --help > /dev/null

USER 10001:10001
WORKDIR /home/detectflow
EXPOSE 8080

# Cloud Run probes /healthz itself (startup and liveness probes in infra/terraform/frontend.tf);
# this one serves `docker run`.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]

# Cloud Run sets PORT; a shell expands it, `exec` keeps detectflow as PID 1 for SIGTERM.
CMD ["sh", "-c", "exec detectflow --log-json up --gcp --host 0.0.0.0 --port \"${PORT}\""]
