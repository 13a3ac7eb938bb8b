# The hermes-stream image used by docker-compose.yml (worker and CLI).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY hermes_stream ./hermes_stream
COPY agents ./agents
COPY schemas ./schemas
# The versions make test passed with (see the Makefile).
RUN pip install --no-cache-dir -c constraints.txt .
WORKDIR /data
CMD ["hermes-stream", "worker"]
