"""Where finished MP3s live."""
