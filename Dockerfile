# Build: the SQL is checked against the committed .sqlx/ data, so no database is needed.
FROM rust:1.95-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY .sqlx .sqlx
COPY migrations migrations
COPY src src
COPY tools tools
RUN cargo build --release --locked --bin refunds-server

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home refunds
COPY --from=build /src/target/release/refunds-server /usr/local/bin/refunds-server
USER refunds
ENV REFUNDS_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --retries=10 CMD curl -fsS http://127.0.0.1:8000/readyz || exit 1
ENTRYPOINT ["refunds-server"]
CMD ["serve"]
