"""SPEC §15 promises: a full disk is a clear error and the journal stays intact (a real, small
tmpfs), a read-only or network filesystem is handled, expired or missing credentials while
tracking show one line (tracker.problem) and tracking resumes by itself; event mode survives a
restarted local stack; the runtime refuses integer headers the way AWS does."""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import botocore.exceptions as bx
import pytest
from botocore.awsrequest import AWSResponse

import sm_async_nb as sma
from sm_async_nb.errors import JournalError
from sm_async_nb.journal import Journal
from sm_async_nb.journal.filesystem import filesystem_type, is_network_filesystem
from sm_async_nb.records import Status

ROW = "5.1,3.5,1.4,0.2\n"


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *options: str):
    """A real tmpfs of ``size`` mounted at ``where`` (needs root, which CI and this machine have)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]), "tmpfs",
                              str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> None:
    """Leave no free byte on the filesystem holding ``folder``."""
    descriptor = os.open(folder / "ballast", os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (65536, 1):
            with contextlib.suppress(OSError):
                while os.write(descriptor, b"\0" * chunk):
                    pass
    finally:
        os.close(descriptor)


def test_a_full_disk_is_one_clear_error_and_the_journal_stays_intact(stack, tmp_path):
    with tmpfs(tmp_path / "small", "2m") as small:
        with stack.client(journal_path=small / "journal.sqlite3") as client:
            kept = client.submit(stack.endpoint_name, ROW, label="before-full")
            fill(small)
            for attempt in (lambda: client.submit(stack.endpoint_name, ROW * 400, label="after-full"),
                            lambda: client.submit_many(stack.endpoint_name, [ROW] * 50)):
                with pytest.raises(JournalError, match="is full: free some space") as caught:
                    attempt()
                assert "\n" not in str(caught.value)
            with pytest.raises(JournalError, match="is full"):  # the tracker writing the completion
                kept.wait(timeout=30)
            (small / "ballast").unlink()
            assert kept.wait(timeout=30).status is Status.COMPLETED  # space again: it goes on
            labels = [r.label for r in client.records()]
            assert labels.count("before-full") == 1 and "after-full" not in labels
        check = sqlite3.connect(small / "journal.sqlite3")
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()


def test_a_journal_on_a_read_only_filesystem_is_one_clear_error(tmp_path):
    with tmpfs(tmp_path / "ro", "1m", "ro") as read_only:
        with pytest.raises(JournalError, match="read-only|cannot create|Cannot create") as caught:
            Journal(read_only / "new-folder" / "journal.sqlite3")
        assert "journal_path" in str(caught.value) and "\n" not in str(caught.value)


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
fs-12345.efs.us-east-1.amazonaws.com:/ /home/sagemaker-user nfs4 rw,vers=4.1 0 0
server:/export /mnt/with\\040space nfs rw 0 0
//nas/share /mnt/smb cifs rw 0 0
"""


@pytest.mark.parametrize("path, kind, network", [
    ("/home/sagemaker-user/work/journal.sqlite3", "nfs4", True),
    ("/home/other/journal.sqlite3", "ext4", False),
    ("/mnt/with space/j.sqlite3", "nfs", True),
    ("/mnt/smb/j.sqlite3", "cifs", True),
    ("/mnt/smbx/j.sqlite3", "ext4", False),  # a prefix of another mount point is not inside it
])
def test_the_mount_table_tells_network_filesystems(path, kind, network):
    assert filesystem_type(path, MOUNTS) == kind
    assert is_network_filesystem(path, MOUNTS) is network


def test_a_journal_on_a_network_filesystem_uses_the_rollback_journal(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("sm_async_nb.journal.store.is_network_filesystem", lambda path: True)
    monkeypatch.setattr("sm_async_nb.journal.store.filesystem_type", lambda path: "nfs4")
    journal = Journal(tmp_path / "on-efs.sqlite3")
    mode = journal._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "delete" and "network filesystem (nfs4)" in journal.notice
    assert "\n" not in journal.notice and any("rollback journal" in r.getMessage() for r in caplog.records)


def test_local_disk_journals_keep_wal(tmp_path):
    journal = Journal(tmp_path / "local.sqlite3")
    assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal" and journal.notice is None


def _s3_answers(client, code: str, status: int):
    def answer(**_):
        return (AWSResponse("https://s3.amazonaws.com/", status, {}, None),
                {"Error": {"Code": code, "Message": "The provided token has expired."},
                 "ResponseMetadata": {"HTTPStatusCode": status}})
    return answer


@pytest.mark.parametrize("how", ["expired-token", "no-credentials"])
def test_expired_credentials_while_tracking_show_one_line_and_tracking_resumes(stack, tmp_path, how):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        inv = client.submit(stack.endpoint_name, ROW)
        events = client.tracker.s3.client.meta.events
        if how == "expired-token":
            handler = _s3_answers(client, "ExpiredToken", 400)
        else:
            def handler(**_):
                raise bx.NoCredentialsError()
        for operation in ("ListObjectsV2", "HeadObject", "GetObject"):
            events.register(f"before-call.s3.{operation}", handler)
        failed: queue.SimpleQueue[str] = queue.SimpleQueue()  # the problem, after each failed refresh

        def heard(_changes) -> None:  # every refresh is published, a failed one too
            if client.tracker.problem:
                failed.put(client.tracker.problem)

        client.tracker.subscribe(heard)
        client.tracker.start()
        problem = failed.get(timeout=20)
        assert "\n" not in problem and ("aws sso login" in problem or "aws configure" in problem)
        assert "resumes by itself" in problem
        panel = client.panel()
        assert problem[:40] in panel.view.w.notices.value  # the first snapshot is drawn before panel() returns
        assert stack.wait_until_idle(10)  # the output is in S3 now
        while not failed.empty():
            failed.get()
        for _ in range(2):  # the second of these refreshes started after the output was written
            client.tracker.poke()
            failed.get(timeout=10)
        assert inv.status is Status.PENDING and client.tracker.running  # nothing marked failed, thread alive
        for operation in ("ListObjectsV2", "HeadObject", "GetObject"):
            events.unregister(f"before-call.s3.{operation}", handler)
        client.tracker.poke()
        inv.wait(timeout=30)
        assert inv.status is Status.COMPLETED and client.tracker.problem is None
        panel.close()


def test_event_mode_after_the_local_stack_restarted(tmp_path, monkeypatch):
    from sm_async_nb.local import LocalStack

    monkeypatch.setenv("SM_ASYNC_NB_HOME", str(tmp_path / "home"))
    journal = tmp_path / "journal.sqlite3"
    ports = {}
    with LocalStack(sns=True) as first, first.client(journal_path=journal) as client:
        ports = first.ports
        made = client.tracker.enable_events(first.endpoint_name)
        client.submit(first.endpoint_name, ROW).wait(timeout=30)
    with LocalStack(sns=True, moto_port=ports["moto"], runtime_port=ports["runtime"]) as second, \
            second.client(journal_path=journal) as client:
        again = client.tracker.enable_events(second.endpoint_name)  # the old queue is gone: a new one
        assert again.queue_url and (again.queue_url != made.queue_url or again.subscriptions != made.subscriptions)
        second.boto3_client("sqs").delete_queue(QueueUrl=again.queue_url)  # gone under a running tracker
        inv = client.submit(second.endpoint_name, ROW)
        assert inv.wait(timeout=30).status is Status.COMPLETED  # S3 polling took over
        assert second.endpoint_name not in client.tracker.event_sources
        assert any("no longer exists" in n for n in client.tracker.notices.values())
        assert client.tracker.disable_events(second.endpoint_name) is not None  # "events off" works too


@pytest.mark.parametrize("value", ["6_0", "\u0666\u0660", "60.0", " ", "1e2"])
def test_the_runtime_refuses_integer_headers_aws_would(stack, value):
    request = urllib.request.Request(
        stack.endpoint_urls["sagemaker-runtime"] + f"/endpoints/{stack.endpoint_name}/async-invocations",
        data=b"", method="POST", headers={"X-Amzn-SageMaker-RequestTTLSeconds": value.encode("utf-8").decode("latin-1"),
                                          "X-Amzn-SageMaker-InputLocation": f"s3://{stack.input_bucket}/inputs/x.csv"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert caught.value.headers["x-amzn-ErrorType"] == "ValidationError"
    assert b"RequestTTLSeconds" in caught.value.read()


def test_credentials_error_classes_are_sm_async_errors():
    assert issubclass(sma.AwsError, sma.errors.SmAsyncError) and issubclass(sma.OutputMissing, LookupError)
