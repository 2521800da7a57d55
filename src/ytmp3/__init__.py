"""ytmp3: a self-hosted service that turns a YouTube link into an MP3."""

__version__ = "0.1.0"
