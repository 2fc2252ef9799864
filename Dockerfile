# tunewatch as a container: `tunewatch serve` on real upstreams (docker-compose.yml runs it with
# PostgreSQL, Prometheus, Alertmanager and Grafana).
#
# Two stages: the first builds wheels of tunewatch and its dependencies, the second installs them
# into a clean python:3.11-slim without pip's cache or a compiler. The process runs as an
# unprivileged user; its configuration comes from TUNEWATCH_* variables and the experiments file
# mounted at /etc/tunewatch/experiments.yaml.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ service/
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TUNEWATCH_HOST=0.0.0.0 \
    TUNEWATCH_PORT=8000 \
    TUNEWATCH_EXPERIMENTS_FILE=/etc/tunewatch/experiments.yaml
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels tunewatch \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/tunewatch --create-home tunewatch
USER tunewatch
WORKDIR /var/lib/tunewatch
EXPOSE 8000
# liveness only: /readyz (database, upstreams) is for the load balancer
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
ENTRYPOINT ["tunewatch"]
CMD ["serve", "--config", "/etc/tunewatch/experiments.yaml"]
