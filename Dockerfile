# Production-like image for every Aerostic process (see docker-compose.yml).
# The local stack without Docker is `aerostic dev`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only the project metadata and the packages listed in pyproject.toml are copied, so a local
# .venv, .git or .env never ends up in an image layer.
WORKDIR /src
COPY pyproject.toml ./
COPY aerostic/ aerostic/
COPY schemas/ schemas/
COPY ingress/ ingress/
COPY streams/ streams/
COPY projector/ projector/
COPY stack/ stack/
COPY db/ db/
COPY tenants/ tenants/
COPY bench/ bench/
RUN pip install --no-cache-dir . \
 && rm -rf /src \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /app aerostic

# /app is owned by the runtime user: the stream workers keep local table state in ./.aerostic.
WORKDIR /app
USER aerostic

EXPOSE 8000
CMD ["aerostic", "--help"]
