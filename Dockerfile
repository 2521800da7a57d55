# ytmp3: one image for every role (`ytmp3 api`, `ytmp3 worker`, `ytmp3 serve`).
#
# The base names its Debian release: the bare `python:3.11-slim` tag moves to the next
# one. BASE overrides it (scripts/test-image builds on a local stand-in of Debian's own
# python3); any base with `python3 -m venv` and `useradd` will do.
ARG BASE=python:3.11-slim-bookworm

# --- build: the virtualenv, from the source, with the s3 extra (YTMP3_STORAGE=s3://...:
# the image is for many hosts; obstore adds ~16 MB); the wheels and the build's leftovers
# stay here. pip stays in it (a live yt-dlp upgrade may want it); setuptools, only for the
# build, goes.
FROM ${BASE} AS build
# WHEELS: a folder of the build context holding every wheel the install needs; when set,
# pip takes them from there alone and the build never touches the network (the
# project's image test fills build/wheels on the host and sets WHEELS=build/wheels).
ARG WHEELS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# .dockerignore lets in only pyproject.toml, README.md, src/ and build/wheels/.
COPY . .
RUN python3 -m venv /opt/ytmp3 \
    && if [ -n "$WHEELS" ]; then set -- --no-index --find-links "$WHEELS"; fi \
    && /opt/ytmp3/bin/pip install "$@" ".[s3]" \
    && /opt/ytmp3/bin/pip uninstall -q -y setuptools \
    && /opt/ytmp3/bin/ytmp3 --help >/dev/null

# --- the image: the base, a user, and the virtualenv. One ffmpeg: the static build
# imageio-ffmpeg ships (YTMP3_FFMPEG falls back to it); Debian's would add ~665 MB.
# The JavaScript runtime yt-dlp uses for YouTube's challenges is the `deno` PyPI package.
FROM ${BASE}
# /data is YTMP3_DATA_DIR (what ytmp3 keeps, yt-dlp upgrades among it), /data/media
# the MP3s: made here so fresh volumes mounted on them start out owned by the user.
RUN useradd --system --uid 10001 --create-home --home-dir /home/ytmp3 ytmp3 \
    && mkdir -p /data/media \
    && chown -R ytmp3:ytmp3 /data
COPY --from=build /opt/ytmp3 /opt/ytmp3
ENV PATH=/opt/ytmp3/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    YTMP3_HOST=0.0.0.0 \
    YTMP3_PORT=8080 \
    YTMP3_DATA_DIR=/data \
    YTMP3_MEDIA_DIR=/data/media
VOLUME /data
USER ytmp3
WORKDIR /home/ytmp3
EXPOSE 8080
# SIGTERM starts the graceful stop (YTMP3_STOP_GRACE); give the container longer than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ytmp3"]
CMD ["serve"]
