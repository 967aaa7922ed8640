"""Which filesystem holds the journal: SQLite's WAL mode needs shared memory between processes,
which network filesystems (NFS, EFS, SMB/CIFS, sshfs) do not provide, so a journal there uses
SQLite's rollback journal instead (SageMaker Studio Classic home folders are EFS over NFS)."""

from __future__ import annotations

import os
from pathlib import Path

NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.sshfs", "sshfs",
                                 "efs", "fuse.efs", "9p", "afs", "ncpfs", "glusterfs", "fuse.glusterfs",
                                 "ceph", "fuse.ceph", "lustre", "gpfs", "fuse.s3fs", "fuse.gcsfuse"})
MOUNTS = "/proc/self/mounts"


def _unescape(field: str) -> str:
    """/proc/mounts writes spaces, tabs, newlines and backslashes as octal escapes."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def filesystem_type(path: str | os.PathLike[str], mounts: str | None = None) -> str | None:
    """The type of the filesystem ``path`` lives on (``"ext4"``, ``"nfs4"``...), from the mount
    table; None when it cannot be told (not Linux, no /proc)."""
    if mounts is None:
        try:
            mounts = Path(MOUNTS).read_text()
        except OSError:
            return None
    target = os.path.realpath(os.fspath(path))
    best, kind = "", None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def is_network_filesystem(path: str | os.PathLike[str], mounts: str | None = None) -> bool:
    return (filesystem_type(path, mounts) or "").lower() in NETWORK_FILESYSTEMS
