# syntax=docker/dockerfile:1
# fastify-signalr: the chat sample by default, or your own entry file:
#   docker build -t fastify-signalr .
#   docker run -p 5000:5000 fastify-signalr                      # the chat sample
#   docker run -p 5000:5000 -v $PWD/app:/app/app fastify-signalr app/server.js

# -- build: compile TypeScript and gather the sample's static files ----------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install` when a registry lacks a platform package the lock file names (npm ci would refuse the lock).
RUN npm ci --no-audit --no-fund || npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY protocol ./protocol
COPY src ./src
COPY samples ./samples
RUN npm run build \
 && mkdir -p dist/samples/chat/public/lib \
 && cp samples/chat/public/index.html dist/samples/chat/public/ \
 && cp node_modules/@microsoft/signalr/dist/browser/signalr.min.js dist/samples/chat/public/lib/

# -- runtime: production dependencies only, non-root --------------------------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production PORT=5000 HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN (npm ci --omit=dev --no-audit --no-fund || npm install --omit=dev --no-audit --no-fund) && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||5000)+'/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node"]
CMD ["dist/samples/chat/server.js"]
