# syntax=docker/dockerfile:1
# meshgate: one image for both containers of a gateway pod (istio-proxy runs `meshgate proxy`, controller runs
# `meshgate controller`; see charts/gateway). Node.js 24 runs the TypeScript sources as they are (type
# stripping), so there is no build step: the image holds the sources and the production dependencies.
#
#   docker build -t meshgate:0.1.0 .
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, exactly as locked; no install scripts (none of them needs one).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
# MESHGATE_LOG_PRETTY=0: JSON logs even on a TTY (`docker run -it`); pino-pretty is a dev dependency, not in the image.
ENV NODE_ENV=production \
    MESHGATE_LOG_PRETTY=0 \
    PATH=/app/bin:$PATH
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY cli ./cli
COPY controller ./controller
COPY gateway ./gateway
COPY xds ./xds
# Istio's proxy uid/gid; the chart runs both containers as 1337:1337 with a read-only root filesystem.
USER 1337:1337
# Listeners (Service targetPorts), merged metrics, status/readiness, proxy metrics.
EXPOSE 8080 8443 15020 15021 15090
# bin/meshgate execs node, so node gets the signal: the proxy drains for --drain-seconds, then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["meshgate"]
