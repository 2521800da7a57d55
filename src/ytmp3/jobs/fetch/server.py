"""The fetch server: yt-dlp imported and warmed up once, forked once per download.

A fresh Python that imports yt-dlp and makes its first extraction spends over a second
before the first byte of audio; a fork of a process that already has spends a few
milliseconds, and shares its memory until it writes to it.

`python -m ytmp3.jobs.fetch.server SOCKET_FD`, given its Options on stdin, serves its
worker over a SOCK_SEQPACKET socket, in the messages of protocol.py. Each download
process leads a process group of its own, so the worker can kill it and whatever it
started; every process here dies with its parent, so all die with the worker.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import sys
from typing import NoReturn

from ytmp3.jobs.fetch import ytdlp
from ytmp3.jobs.fetch.protocol import (
    MAX_MESSAGE,
    SOFTWARE_ERROR,
    Exited,
    Options,
    Refused,
    Request,
    Started,
    decode_request,
    encode_answer,
)
from ytmp3.jobs.lifetime import die_with_parent, kill_group


def serve(sock: socket.socket, prepared: ytdlp.Prepared) -> None:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)  # SIGCHLD wakes the select below
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    children: set[int] = set()
    # Keep the garbage collector off the warmed-up objects, so a fork's collections
    # don't write to (and so copy) pages it shares with this process.
    gc.freeze()
    try:
        while True:
            ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                _reap(sock, children)
            if sock.fileno() not in ready:
                continue
            message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 2)
            if not message:
                return  # the worker closed its end
            try:
                if len(fds) != 2:
                    raise OSError(f"a request came with {len(fds)} file descriptors, not 2")
                request = decode_request(message)
                _refresh(prepared)  # here, so each fork need not read it again
                pid = os.fork()
            except (OSError, ValueError, TypeError) as exc:
                # answered all the same: the worker matches answers to requests in order
                for fd in fds:
                    os.close(fd)
                sock.send(encode_answer(Refused(str(exc))))
                continue
            if pid == 0:
                os.close(wake_r)
                os.close(wake_w)
                _download(sock, prepared, request, *fds)
            # Both sides set the group, so it is set before the worker hears the pid
            # (and may kill the group), whichever of the two runs first.
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)
            children.add(pid)
            for fd in fds:
                os.close(fd)
            sock.send(encode_answer(Started(pid)))
    finally:
        for pid in children:
            kill_group(pid)


def _refresh(prepared: ytdlp.Prepared) -> None:
    try:
        ytdlp.refresh_cookies(prepared)
    except Exception as exc:  # a half-written file: the download tries again, and says why
        print(f"fetch server: the cookies file could not be read: {exc}", file=sys.stderr)


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        sock.send(encode_answer(Exited(pid, code)))


def _download(
    sock: socket.socket, prepared: ytdlp.Prepared, job: Request, data_fd: int, events_fd: int
) -> NoReturn:
    """In the forked process: become the download. It leaves without the server's own
    clean-up, which is not this process's to run."""

    def become() -> int:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        server = os.getppid()
        sock.close()
        os.setpgid(0, 0)
        die_with_parent()
        if os.getppid() != server:
            return SOFTWARE_ERROR  # the server died before the line above took effect
        os.dup2(data_fd, 1)
        os.close(data_fd)
        return ytdlp.run(prepared, job, events_fd)

    ytdlp.exit_with(become)


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    prepared = ytdlp.prepare(Options.from_json(sys.stdin.read()))  # see protocol.py
    with sock:
        sock.send(encode_answer(ytdlp.describe()))
        serve(sock, prepared)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
