# syntax=docker/dockerfile:1
# fastify-signalr: the chat sample by default, or your own entry file given as the argument:
#   docker build -t fastify-signalr .
#   docker run -p 5000:5000 fastify-signalr                                          # the chat sample
#   docker run -p 5000:5000 -e REDIS_URL=redis://redis:6379 fastify-signalr          # ... on a Redis backplane
#   docker run -p 5000:5000 -v "$PWD/app:/app/app:ro" fastify-signalr app/server.js  # your server; it can
#                                                          # require('fastify-signalr') (the package's own name)
# Configuration: environment variables or a JSON file named by CONFIG_FILE (README, "Configuration").
# test/deploy/dockerfile.test.ts runs these very stages outside a container: keep every step a plain command.

# -- build: compile TypeScript and gather the sample's static files ----------------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm ci` only: an image is built from exactly the versions the lock file names, or not at all.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY protocol ./protocol
COPY src ./src
COPY samples ./samples
COPY admin-page ./admin-page
COPY scripts/copy-admin-page.mjs ./scripts/
RUN npm run build \
 && mkdir -p dist/samples/chat/public/lib \
 && cp samples/chat/public/index.html dist/samples/chat/public/ \
 && cp node_modules/@microsoft/signalr/dist/browser/signalr.min.js dist/samples/chat/public/lib/

# -- runtime: production dependencies only, non-root --------------------------------------------------------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production PORT=5000 HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
# The npm cache is a build cache mount, so it never ends up in the image.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
USER node
EXPOSE 5000
# The server drains on SIGTERM: new connections are refused, each client gets a Close allowing reconnect once its
# invocations are done (SHUTDOWN_DRAIN_TIMEOUT_MS, default 5 s, then at most 3 s to close: within `docker stop`'s 10 s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||5000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node"]
CMD ["dist/samples/chat/server.js"]
