# sepmbot: one static binary in a distroless image.
#   docker build -t sepmbot --build-arg VERSION=$(git describe --always) .
#   docker run -v sepmbot-data:/data -e SEPMBOT_SEPM_PASSWORD_FILE=/run/secrets/sepm ... sepmbot run
# dockerfile_test.go runs the build command below outside Docker and checks the result.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sepmbot .
# The data folder, owned by the non-root user of the final stage.
RUN mkdir -p /out/data

# distroless static: no shell, no libc, CA certificates included (Slack, Discord and
# a CA-trusted SEPM need them), and a non-root user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sepmbot /usr/local/bin/sepmbot
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME /data
# The admin listener is bound wide for Prometheus: /metrics, /healthz and /readyz
# answer anyone who reaches it; /backup and /audit answer loopback only (docker exec)
# unless SEPMBOT_ADMIN_TOKEN is set (then only requests that carry it).
ENV SEPMBOT_DATA=/data \
    SEPMBOT_ADMIN_LISTEN=0.0.0.0:9090
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/sepmbot", "healthcheck", "--admin-url", "http://127.0.0.1:9090"]
ENTRYPOINT ["/usr/local/bin/sepmbot"]
CMD ["run"]
