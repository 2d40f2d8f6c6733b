# skynet-rs in a container: build stage on Debian with the Rust toolchain, run stage on Debian
# slim as a non-root user. The node runs the config of a mounted volume:
#   docker build -t skynet-rs .
#   docker run --rm -v "$PWD/mynode:/srv/skynet" -p 8888:8888 skynet-rs            # /srv/skynet/config
#   docker run --rm -v "$PWD/mynode:/srv/skynet" skynet-rs --check /srv/skynet/config
# The working directory is the volume, so relative paths in the config (lualib/, service/, ...)
# are taken inside it. Leave `daemon` unset and `logger` unset (stdout, for `docker logs`).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The executable, libskynet and the headers, installed under /opt/skynet.
RUN make skynet lib \
    && make install-files PREFIX=/opt/skynet

FROM debian:bookworm-slim
# tini is pid 1: the kernel gives pid 1 of a container no default signal actions, so the node
# itself as pid 1 would ignore the SIGTERM of `docker stop` (and be killed after the timeout);
# under tini the node gets the signal and ends at once.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --home-dir /srv/skynet --shell /usr/sbin/nologin skynet \
    && mkdir -p /srv/skynet && chown skynet:skynet /srv/skynet
COPY --from=build /opt/skynet /opt/skynet
ENV PATH=/opt/skynet/bin:$PATH
USER skynet
WORKDIR /srv/skynet
VOLUME ["/srv/skynet"]
ENTRYPOINT ["/usr/bin/tini", "--", "skynet"]
CMD ["/srv/skynet/config"]
