"""The conversion: job records, the ARQ task and worker, and the yt-dlp/ffmpeg pipeline."""
