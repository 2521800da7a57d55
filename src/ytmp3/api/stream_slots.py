"""How many event streams each client address holds open in this process. Pure."""

from __future__ import annotations


class StreamSlots:
    """At most `per_client` open streams per client address (None: no bound).

    In-process: each API process counts its own streams (they live on its sockets).
    """

    def __init__(self, per_client: int | None) -> None:
        self.per_client = per_client
        self._open: dict[str, int] = {}

    def take(self, client: str) -> bool:
        held = self._open.get(client, 0)
        if self.per_client is not None and held >= self.per_client:
            return False
        self._open[client] = held + 1
        return True

    def give_back(self, client: str) -> None:
        held = self._open.get(client, 0) - 1
        if held > 0:
            self._open[client] = held
        else:
            self._open.pop(client, None)  # no entry left behind per address ever seen

    def held(self, client: str) -> int:
        return self._open.get(client, 0)

    @property
    def total(self) -> int:
        return sum(self._open.values())
