"""SFTP delivery of the OpenAI feed files (OpenAI's file-upload overview: "Push feeds to
OpenAI via SFTP", stable file names, a stable shard set overwritten in place).

- The server's host key is pinned (no trust on first use): a key that differs fails.
- Key or password authentication, from settings.
- Each file is written to a temporary name in the target folder, then renamed over the
  stable name (``posix-rename``), so OpenAI's reader never sees a half-written file.
- Transient failures (connection, I/O) are retried with capped exponential backoff; an
  authentication or host-key failure is final.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import asyncssh


@dataclass(frozen=True)
class SftpTarget:
    host: str
    port: int
    username: str
    host_key: str  # the server's public key, OpenSSH format ("ssh-ed25519 AAAA…")
    remote_dir: str = "."
    password: str | None = None
    private_key: str | None = None  # PEM / OpenSSH private key text
    connect_host: str | None = None  # the vetted address to dial (outbound-URL policy)


@dataclass(frozen=True)
class FileUpload:
    file: str
    size_bytes: int
    checksum: str  # sha256 hex of the bytes sent
    attempts: int
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class SftpFatal(Exception):
    """Will not get better by retrying (credentials, host key)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _connect_options(target: SftpTarget) -> dict[str, object]:
    try:
        pinned = asyncssh.import_public_key(target.host_key)
    except (ValueError, asyncssh.KeyImportError) as exc:
        raise SftpFatal(f"the pinned host key is not a public key: {exc}") from None
    options: dict[str, object] = {
        "port": target.port, "username": target.username,
        "known_hosts": ([pinned], [], []),  # trusted host keys, CA keys, revoked keys
        "client_keys": None, "agent_path": None, "password": target.password,
        "preferred_auth": ("publickey", "password"), "connect_timeout": 15,
        "login_timeout": 15,
    }
    if target.private_key:
        try:
            options["client_keys"] = [asyncssh.import_private_key(target.private_key)]
        except (ValueError, asyncssh.KeyImportError) as exc:
            raise SftpFatal(f"the SFTP private key cannot be read: {exc}") from None
    return options


async def _put(sftp: asyncssh.SFTPClient, local: Path, remote_dir: str) -> None:
    final = str(PurePosixPath(remote_dir) / local.name)
    temp = str(PurePosixPath(remote_dir) / f".{local.name}.uploading")
    await sftp.put(str(local), temp)
    try:
        await sftp.posix_rename(temp, final)  # atomic replace (OpenSSH extension)
    except asyncssh.SFTPOpUnsupported:
        if await sftp.exists(final):
            await sftp.remove(final)
        await sftp.rename(temp, final)


async def upload_files(target: SftpTarget, files: Sequence[Path], *, attempts: int = 4,
                       base_delay: float = 1.0, max_delay: float = 60.0,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                       stale: Callable[[str], bool] | None = None) -> list[FileUpload]:
    """Upload every file (one connection per attempt); a result per file. Once all are up,
    remote files that ``stale`` recognises (e.g. shards of the same feed) and that were not
    part of this upload are removed, so the remote shard set is exactly this snapshot."""
    options = _connect_options(target)
    results: dict[str, FileUpload] = {}
    checksums = {p.name: sha256_file(p) for p in files}
    pending = list(files)
    delay = base_delay
    last_error = ""
    attempt = 0
    for attempt in range(1, attempts + 1):  # noqa: B007 (used after the loop)
        try:
            async with asyncssh.connect(target.connect_host or target.host,
                                        **options) as conn, conn.start_sftp_client() as sftp:
                if target.remote_dir not in ("", "."):
                    await sftp.makedirs(target.remote_dir, exist_ok=True)
                while pending:
                    local = pending[0]
                    started = time.perf_counter()
                    await _put(sftp, local, target.remote_dir)
                    results[local.name] = FileUpload(
                        local.name, local.stat().st_size, checksums[local.name],
                        attempt, time.perf_counter() - started)
                    pending.pop(0)
                if stale is not None:
                    current = {p.name for p in files}
                    for name in await sftp.listdir(target.remote_dir or "."):
                        if stale(name) and name not in current:
                            await sftp.remove(str(PurePosixPath(target.remote_dir) / name))
            return [results[p.name] for p in files]
        except (asyncssh.PermissionDenied, asyncssh.HostKeyNotVerifiable) as exc:
            last_error = f"{type(exc).__name__}: {exc.reason}"[:300]
            break
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"[:300]
            if attempt == attempts:
                break
            await sleep(min(delay, max_delay))
            delay *= 2
    for local in pending:
        results[local.name] = FileUpload(local.name, local.stat().st_size,
                                         checksums[local.name], attempt, 0.0,
                                         error=last_error or "not uploaded")
    return [results[p.name] for p in files]
