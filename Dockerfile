# confhub as one container: tini (PID 1) → supervisord → confhub and the console program.
#   docker build -t confhub .
# BASE_IMAGE may name any Debian-based image with Node >= 20.19 in /usr/local (the official
# node image layout); the test suite builds from a local one made with debootstrap.
ARG BASE_IMAGE=node:26-trixie-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-fund --no-audit
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
# Of better-sqlite3's build only the addon itself is loaded at run time (about 26 MB less).
RUN npm run build && npm prune --omit=dev \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node . \
 && rm -rf build deps src \
 && mkdir -p build/Release && mv better_sqlite3.node build/Release/ \
 && chmod 0755 /app/dist/cli.js

FROM ${BASE_IMAGE}
# Standard image metadata (registries and scanners read these); the version is package.json's.
LABEL org.opencontainers.image.title="confhub" \
      org.opencontainers.image.description="Configuration center for all-in-one container deployments: config.ini through a REST API, synced into each service's own files" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT"
RUN apt-get update \
 && apt-get install -y --no-install-recommends supervisor git tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/confhub && chmod 0700 /run/confhub
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json LICENSE ./
COPY config ./config
# The service init script: /app/init is what GET /api/v1/init.sh serves; /usr/local/bin has it for
# `docker cp` or a COPY --from=confhub into a service image. COPY keeps the 0755 of the checkout;
# the chmod keeps it for a checkout that lost it.
COPY init ./init
# The console's page (its script and styles), served by the console program.
COPY web ./web
COPY init/confhub-init.sh /usr/local/bin/confhub-init.sh
RUN chmod 0755 /app/init/confhub-init.sh /usr/local/bin/confhub-init.sh
COPY supervisord/supervisord.conf /etc/confhub/supervisord.conf
# `docker exec CONTAINER confhub apikey show` and the other CLI commands.
RUN ln -s /app/dist/cli.js /usr/local/bin/confhub
# The console passes /api/ on from loopback with x-forwarded-for set to its client: trusted from
# loopback only, so rate limits and the audit log see the real client.
ENV NODE_ENV=production \
    CONFHUB_DATA_DIR=/data \
    CONFHUB_HOST=0.0.0.0 \
    CONFHUB_PORT=8080 \
    CONFHUB_TRUST_PROXY=loopback
VOLUME /data
EXPOSE 8080 9080
# Asks the address confhub listens on (loopback for the wildcards); a bare node -e, not the CLI,
# so a check every 10 s costs little.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD node -e "const h=process.env.CONFHUB_HOST||'127.0.0.1',a=h==='0.0.0.0'||h==='::'?'127.0.0.1':h;fetch('http://'+(a.includes(':')?'['+a+']':a)+':'+(process.env.CONFHUB_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# tini forwards docker stop's SIGTERM to supervisord, which stops confhub with SIGTERM.
ENTRYPOINT ["tini", "--"]
CMD ["supervisord", "-c", "/etc/confhub/supervisord.conf"]
