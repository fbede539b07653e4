# sipbob: SIP registrar and forking proxy. Build: docker build -t sipbob .
# node:26 is the Active LTS line since October 2026; the code itself also runs on Node 20 (engines).
FROM node:26-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
RUN npm run build

FROM node:26-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
# State (bindings, calls, settings) lives in /app/data; mount a volume to keep it.
RUN mkdir -p /app/data && chown -R node:node /app/data
USER node
EXPOSE 5060/udp 5060/tcp 8080/tcp
# The embedded config listens on loopback; in a container pass one that listens on 0.0.0.0.
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["--config", "/app/config/sipbob.yaml"]
