# confhub as one container: supervisord manages confhub (and, later, the internal programs it
# configures). Build: docker build -t confhub .   (BASE_IMAGE may point at a local Node image)
ARG BASE_IMAGE=node:24-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-fund --no-audit
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends supervisor git tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/confhub && chmod 0700 /run/confhub
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY supervisord/supervisord.conf /etc/confhub/supervisord.conf
ENV NODE_ENV=production \
    CONFHUB_DATA_DIR=/data \
    CONFHUB_HOST=0.0.0.0 \
    CONFHUB_PORT=8080
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.CONFHUB_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# tini forwards docker stop's SIGTERM to supervisord, which stops confhub with SIGTERM.
ENTRYPOINT ["tini", "--"]
CMD ["supervisord", "-c", "/etc/confhub/supervisord.conf"]
