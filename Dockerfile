# The gantry image: the static release binary, CA certificates and an empty /tmp, nothing else. It needs no
# base image, so it builds anywhere, without a registry.
#
#   make image        builds gantry:VERSION from the x86_64 release archive in dist/
#
# The build context is a folder holding the release binary as `gantry` (scripts/image.sh
# unpacks it from the archive, so the image carries exactly the released, checked binary).
# Running it: see docs/releasing.md ("The container image"). gantry drives the Docker daemon
# of the host through its socket, and the daemon bind-mounts paths of the state directory,
# so mount that directory at the same path inside and out.
FROM scratch
ARG VERSION=dev
COPY rootfs/ /
ENV GANTRY_STATE_DIR=/var/lib/gantry \
    XDG_RUNTIME_DIR=/run \
    PATH=/usr/local/bin
LABEL org.opencontainers.image.title="gantry" \
      org.opencontainers.image.description="gantry: CI/CD pipelines as code; every step a cached container" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/gantry-dev/gantry"
ENTRYPOINT ["/usr/local/bin/gantry"]
CMD ["--help"]
