"""The download subsystem: yt-dlp in a process of its own, streaming audio into a pipe.

server.py is the fork server (yt-dlp warmed up once, forked per download), process.py the
portable fresh process per download, client.py what the worker uses to start either;
protocol.py is everything that crosses between them; ytdlp.py runs yt-dlp itself.
"""
