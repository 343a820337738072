# The atomicwork-mcp image: one binary, every role (controller, dataplane, run, local).
# It is built without default features, so the simulated sandbox tenant (`local
# --sandbox`, for trying the project out) is not in it; the fuzz harness is in no binary.
#
#   docker build -t ghcr.io/atomicwork-mcp-operator/atomicwork-mcp:0.1.0 .
#
# Build stage: dependencies are compiled in their own layer from Cargo.toml and
# Cargo.lock alone, so editing the sources rebuilds only this crate.
ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src

# Dependency layer: a placeholder for the library and for every target Cargo.toml
# declares ([lib], [[bin]], [[bench]], [[test]], [[example]]), so cargo can load the
# manifest and build all dependencies without the sources.
COPY Cargo.toml Cargo.lock ./
RUN awk -F'"' 'function flush() { if (kind == "") return; if (path == "") path = (kind == "lib") ? "src/lib.rs" : dir[kind] "/" name ".rs"; print kind, path; kind = "" } /^\[/ { flush(); name = ""; path = "" } /^\[lib\]/ { kind = "lib" } /^\[\[(bin|bench|test|example)\]\]/ { kind = substr($0, 3, index($0, "]]") - 3) } kind != "" && /^name *=/ { name = $2 } kind != "" && /^path *=/ { path = $2 } BEGIN { dir["bin"] = "src/bin"; dir["bench"] = "benches"; dir["test"] = "tests"; dir["example"] = "examples" } END { flush() }' Cargo.toml \
  | while read -r kind path; do \
      mkdir -p "$(dirname "$path")"; \
      if [ "$kind" = lib ]; then : > "$path"; else echo 'fn main() {}' > "$path"; fi; \
    done
RUN cargo build --release --locked --bin atomicwork-mcp --no-default-features

# The real sources (placeholders of other targets stay: only the binary is built). Touch
# them so cargo never mistakes them for the placeholders.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin atomicwork-mcp --no-default-features \
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
