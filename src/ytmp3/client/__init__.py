"""`ytmp3 get`: the command-line client of the ytmp3 API, or of one run in this process.

api (HTTP + SSE), local (the service in-process), names and files (where MP3s land),
display (bars, lines or JSON), tracks and playlists (one URL each), run (all of them),
command (the command line).
"""
