# ytmp3: one image for every role (`ytmp3 api`, `ytmp3 worker`, `ytmp3 serve`).
FROM python:3.11-slim

# ffmpeg from Debian: the converter. Nothing else is needed from the system; the
# JavaScript runtime yt-dlp uses for YouTube's challenges comes with the `deno` PyPI package.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf /app/src

# A user of its own; the media dir is created here so a fresh named volume mounted on
# it starts out owned by that user.
RUN useradd --system --uid 10001 --create-home --home-dir /home/ytmp3 ytmp3 \
    && mkdir -p /data/media \
    && chown ytmp3:ytmp3 /data/media
USER ytmp3
WORKDIR /home/ytmp3

ENV YTMP3_HOST=0.0.0.0 \
    YTMP3_PORT=8080 \
    YTMP3_MEDIA_DIR=/data/media
EXPOSE 8080
# SIGTERM starts the graceful stop (YTMP3_STOP_GRACE); give the container longer than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ytmp3"]
CMD ["serve"]
