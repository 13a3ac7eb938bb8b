# The hermes-stream image used by docker-compose.yml (worker and CLI).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hermes_stream ./hermes_stream
COPY agents ./agents
COPY schemas ./schemas
RUN pip install --no-cache-dir .
WORKDIR /data
CMD ["hermes-stream", "worker"]
