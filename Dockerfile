# withings-token serve in a container: the admin API, the token broker, the
# Withings proxy and the background refresh (docs/deploy.md). Railway builds
# it as it finds it (railway.toml). This repository's CI has no Docker
# daemon: the image is not built there; tests/cli/deploy_files.rs checks
# this file's text (stages, --locked, the user, the signal, the health
# check, the entry point, the store).

# The build: the versions Cargo.lock pins, nothing newer (--locked).
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked \
    && install -m 0755 target/release/withings-token /usr/local/bin/withings-token

# The runtime: a slim Debian and the one binary. TLS needs no system
# certificates: rustls carries the Mozilla roots (webpki-roots), which
# verify wbsapi.withings.net and backboard.railway.app.
FROM debian:bookworm-slim AS runtime
COPY --from=build /usr/local/bin/withings-token /usr/local/bin/withings-token
# Not root. /data is the store's volume: made here and owned by that user,
# so a Docker volume mounted on it starts writable. (Railway mounts its
# volumes as root: docs/deploy.md says what to set there.)
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin withings \
    && mkdir -p /data \
    && chown withings:withings /data \
    && chmod 0700 /data
USER withings
# The store, and the state beside it (a Redis store's rescue copies), on
# the volume; PORT as Railway sets it (serve listens on 0.0.0.0:$PORT).
ENV WITHINGS_TOKEN_STORE=/data/tokens.json \
    XDG_STATE_HOME=/data/state \
    HOME=/data \
    PORT=8080
VOLUME ["/data"]
EXPOSE 8080
# serve finishes a refresh in flight on SIGTERM and exits 0.
STOPSIGNAL SIGTERM
# The binary asks itself (no curl in the image): exit 0 while GET /health
# answers 200, non-zero when the store cannot be read or nothing answers.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD withings-token --server "http://127.0.0.1:${PORT}" --retries 0 --timeout 5s -q health
ENTRYPOINT ["withings-token", "serve"]
