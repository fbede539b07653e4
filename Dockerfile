# sipbob: SIP registrar and forking proxy (README.md, "Deploy").
#   docker build -t sipbob .
#   docker run -d --name sipbob --network host -v sipbob-data:/var/lib/sipbob \
#     -v /etc/sipbob:/etc/sipbob:ro sipbob --config /etc/sipbob/sipbob.yaml
# Host networking because SIP writes addresses into its messages (Via, Record-Route, Contact):
# behind Docker's port mapping the proxy would name container addresses and ports nobody can
# reach, and UDP mappings lose the phones' NAT bindings. deploy/docker-compose.yml does the same.
#
# Node 26 is the LTS line (since October 2026); the test suite runs on it and on Node 20
# (README.md, "Deploy"). Build with another line: --build-arg NODE_VERSION=24.
ARG NODE_VERSION=26

# Build: TypeScript and the portal into dist/, with the devDependencies.
FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
# --ignore-scripts: `prepare` would build before the sources are copied.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
RUN npm run build

# Run: the production dependencies and the built dist/ only; no compiler in the image.
FROM node:${NODE_VERSION}-slim
ENV NODE_ENV=production \
    SIPBOB_HEALTH_URL=http://127.0.0.1:8080/healthz
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
# State (bindings, calls, settings): the config's storage.path. deploy/sipbob.yaml names this
# directory; a named volume keeps it across containers (a new one takes the owner from here).
RUN mkdir -p /var/lib/sipbob /app/data && chown node:node /var/lib/sipbob /app/data
VOLUME ["/var/lib/sipbob"]
USER node
# Documentation only: with --network host nothing is mapped. Media (RTP) never passes sipbob.
EXPOSE 5060/udp 5060/tcp 8080/tcp
# /healthz is 200 once every listener is up. Set SIPBOB_HEALTH_URL to the config's http.listen
# (https://127.0.0.1:8443/healthz for deploy/sipbob.yaml); the probe runs in the container's
# network, which is the host's with --network host.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["node", "/app/deploy/healthcheck.mjs"]
# node is PID 1 and handles SIGTERM (graceful stop) and SIGHUP (reload: docker kill -s HUP sipbob).
ENTRYPOINT ["node", "dist/src/cli.js"]
# The embedded config listens on loopback only (a demo); pass your own, as above.
CMD ["--config", "/app/config/sipbob.yaml"]
