"""Every Redis key ytmp3 uses, named in one place. Pure."""

PREFIX = "ytmp3"
# ARQ's queue of single videos (and of playlists to read): the API enqueues, the workers take
QUEUE = f"{PREFIX}:queue"
# ARQ's queue of playlists' entries (bulk, ytmp3.cache.bulk): each worker takes from both
# queues with slots of its own for each, so a single video never waits for an entry
BULK_QUEUE = f"{PREFIX}:bulk-queue"


def probe_key(video_id: str) -> str:
    """The cached answer of the existence probe: "1" exists, "0" missing."""
    return f"{PREFIX}:video:{video_id}"


def probe_lock_key(video_id: str) -> str:
    """Held by the one process probing a video, so parallel requests probe once."""
    return f"{PREFIX}:probe-lock:{video_id}"


def claim_key(video_id: str, bitrate: int) -> str:
    """Which job owns the conversion of (video, bitrate) right now."""
    return f"{PREFIX}:claim:{video_id}:{bitrate}"


def fair_pending_key(client: str) -> str:
    """A client's conversions not yet in ARQ's queue, oldest first (ytmp3.cache.fair)."""
    return f"{PREFIX}:fair-pending:{client}"


def fair_window_key(client: str) -> str:
    """A client's conversions in ARQ's queue or running: its window."""
    return f"{PREFIX}:fair-window:{client}"


def fair_clients_key() -> str:
    """Clients with conversions pending or in their window: what the periodic refill visits."""
    return f"{PREFIX}:fair-clients"


def fair_client_of_key(job_id: str) -> str:
    """Which client's window a conversion belongs to, for the refill when it ends."""
    return f"{PREFIX}:fair-client-of:{job_id}"


def job_key(job_id: str) -> str:
    """The job's status record (JSON)."""
    return f"{PREFIX}:job:{job_id}"


def job_events_channel(job_id: str) -> str:
    """Pub/sub channel carrying each new version of the job's record."""
    return f"{PREFIX}:events:{job_id}"


def worker_key(worker_id: str) -> str:
    """A worker's liveness record (JSON, ytmp3.cache.workers): alive while this key lives."""
    return f"{PREFIX}:worker:{worker_id}"


def running_key() -> str:
    """Hash of the jobs a worker runs now: job id -> worker id (kept with each record write)."""
    return f"{PREFIX}:running"


def rate_key(client: str, window: int) -> str:
    return f"{PREFIX}:rate:{client}:{window}"


def workers_key() -> str:
    """Set of the ids of workers with a liveness record (some may have lapsed since)."""
    return f"{PREFIX}:workers"


def playlist_key(playlist: str) -> str:
    """A playlist's record (JSON, ytmp3.model.playlist): its entries and their jobs."""
    return f"{PREFIX}:playlist:{playlist}"


def playlist_claim_key(list_id: str, bitrate: int) -> str:
    """Which playlist owns the reading of (YouTube list, bitrate) right now."""
    return f"{PREFIX}:playlist-claim:{list_id}:{bitrate}"


def playlists_of_key(job_id: str) -> str:
    """The playlists a conversion is an entry of: their records live as long as it does."""
    return f"{PREFIX}:playlists-of:{job_id}"


def bulk_key(job_id: str) -> str:
    """Set while a conversion is a playlist's entry alone, no single submission of it:
    its processes run at a lower CPU priority (ytmp3.cache.bulk)."""
    return f"{PREFIX}:bulk:{job_id}"
