# Analysis container: builds flame-sdk, then runs one analysis module on a node.
# Build:  docker build -t flame-analysis .
# Run:    docker run -e FLAME_NODE_ID=... -e FLAME_NATS_URL=... -e FLAME_HUB_S3_BUCKET=... flame-analysis
#         (ANALYSIS selects the module; default: the example federated mean)

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY analyses ./analyses
COPY apps ./apps
RUN npm run build

FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    FLAME_HEALTH_PORT=8080 \
    ANALYSIS=dist/analyses/federated-mean/index.js
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY data ./data
RUN useradd --system --uid 10001 --home-dir /app flame && chown -R flame /app
USER flame
# 8080: /healthz (FLAME_HEALTH_PORT). 8000: on a FLAME node (KEYCLOAK_TOKEN set, no FLAME_NATS_URL) the
# pod's own server, where nginx forwards the webhook and the orchestrator polls /healthz.
EXPOSE 8080
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "const e=process.env,p=e.KEYCLOAK_TOKEN&&!e.FLAME_NATS_URL?(e.FLAME_NODE_PORT||8000):(e.FLAME_HEALTH_PORT||8080);fetch('http://127.0.0.1:'+p+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["sh", "-c", "exec node dist/apps/cli/main.js run \"$ANALYSIS\" \"$@\"", "--"]
