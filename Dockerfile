# The atomicwork-mcp image: one binary, every role (controller, dataplane, run, local).
#
#   docker build -t ghcr.io/atomicwork-mcp-operator/atomicwork-mcp:0.1.0 .
#
# Build stage: dependencies are compiled in their own layer from Cargo.toml and
# Cargo.lock alone, so editing the sources rebuilds only this crate.
ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src

# Dependency layer: a placeholder crate with the real manifest and lock file.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bin atomicwork-mcp \
 && rm -rf src

# The real sources. Touch them so cargo never mistakes them for the placeholders.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin atomicwork-mcp \
 && install -D -m 0755 target/release/atomicwork-mcp /out/atomicwork-mcp

# Runtime stage: glibc, libgcc and CA certificates, no shell, no package manager.
# The :nonroot variant runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="atomicwork-mcp" \
      org.opencontainers.image.description="Kubernetes operator and data plane serving filtered Atomicwork ITSM tools over MCP" \
      org.opencontainers.image.source="https://github.com/atomicwork-mcp-operator/atomicwork-mcp-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/atomicwork-mcp /usr/local/bin/atomicwork-mcp
# Numeric, so Kubernetes' runAsNonRoot check can verify it without reading /etc/passwd.
USER 65532:65532
# The process writes nothing to the image: run it with a read-only root filesystem
# (readOnlyRootFilesystem: true in Kubernetes, `docker run --read-only` elsewhere).
# 8080: data plane (MCP, /healthz, /readyz, /metrics); 9090: controller (/healthz, /readyz, /metrics).
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/atomicwork-mcp"]
CMD ["--help"]
