# crashspool's container image. Build: `docker build -t crashspool:$(git rev-parse --short HEAD) .`
# (or `buildah bud`). NODE_IMAGE: any Debian-based Node 20/22/24 image; the default is Node 24 LTS.
# Run with the spool on a volume: `docker run -v spool:/var/lib/crashspool -e STORAGE_URL=s3://… crashspool`.
ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies only. better-sqlite3 is a native addon: prebuild-install downloads its
# binary for this Node; the compiler is there for when no prebuilt binary matches.
FROM ${NODE_IMAGE} AS dependencies
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# The TypeScript build (needs the dev dependencies: typescript, @types).
FROM dependencies AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts/write-build-info.mjs ./scripts/
# /__version__: pass SOURCE_URL, BUILD_URL and GIT_COMMIT as build arguments (no .git in the context).
ARG SOURCE_URL=
ARG BUILD_URL=
ARG GIT_COMMIT=
RUN SOURCE_URL="$SOURCE_URL" BUILD_URL="$BUILD_URL" GIT_COMMIT="$GIT_COMMIT" npm run build

FROM ${NODE_IMAGE}
# tini as PID 1: it forwards SIGTERM to node and reaps any child; node itself as PID 1 would also
# get SIGTERM (the collector handles it) but would reap nothing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 crashspool \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin crashspool \
 && mkdir -p /var/lib/crashspool/spool \
 && chown -R 10001:10001 /var/lib/crashspool
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8000 \
    METRICS_PORT=9100 \
    SPOOL_DIR=/var/lib/crashspool/spool
COPY --from=dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
VOLUME /var/lib/crashspool
EXPOSE 8000 9100
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
# `docker run … crashspool node dist/main.js check` runs the preflight instead;
# `… node dist/cli/spool-inspect.js summary` inspects the spool (same volume).
CMD ["node", "dist/main.js"]
