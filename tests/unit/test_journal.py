"""The SQLite journal: compare-and-set transitions, lookups, corruption and schema guards."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from sm_async_nb.errors import JournalError
from sm_async_nb.journal import SCHEMA_VERSION, Journal
from sm_async_nb.records import BatchRecord, InvocationRecord, Status, new_inference_id


def record(iid=None, **kw):
    return InvocationRecord(inference_id=iid or new_inference_id(), endpoint_name="ep", origin="o",
                            submitted_at=kw.pop("submitted_at", 1.0), **kw)


@pytest.fixture(params=["memory", "file"])
def journal(request, tmp_path):
    j = Journal(":memory:" if request.param == "memory" else tmp_path / "j.sqlite3")
    yield j
    j.close()


def test_round_trip_keeps_every_field(journal):
    r = record("a", label="lbl", request={"content_type": "text/csv", "request_ttl_seconds": 90},
               inline=True, batch_id="b", batch_index=3, row_start=10, row_count=5)
    journal.add([r])
    back = journal.get("a")
    assert back.request == {"content_type": "text/csv", "request_ttl_seconds": 90}
    assert (back.inline, back.batch_index, back.row_start, back.label) == (True, 3, 10, "lbl")
    assert back.status is Status.SUBMITTING


def test_duplicate_insert_writes_nothing(journal):
    journal.add([record("a")])
    with pytest.raises(sqlite3.IntegrityError):
        journal.add([record("b"), record("a")], BatchRecord("batch", "ep", 2))
    assert journal.get("b") is None
    assert journal.get_batch("batch") is None


def test_compare_and_set_applies_a_transition_once(journal):
    journal.add([record("a", status=Status.PENDING)])
    assert journal.update("a", expect=Status.PENDING, status=Status.COMPLETED)
    assert not journal.update("a", expect=Status.PENDING, status=Status.FAILED)
    assert journal.get("a").status is Status.COMPLETED


def test_update_rejects_unknown_fields(journal):
    journal.add([record("a")])
    with pytest.raises(ValueError, match="unknown journal fields"):
        journal.update("a", colour="red")


def test_find_by_id_prefix_label_and_batch(journal):
    journal.add([record("0190aaaa-1", label="night-run", submitted_at=1, batch_id="b1", batch_index=0),
                 record("0190aaab-2", label="night-run", submitted_at=1, batch_id="b1", batch_index=1),
                 record("0190bbbb-3", batch_id="batch-x", batch_index=0)])
    assert [r.inference_id for r in journal.find("night-run")] == ["0190aaaa-1", "0190aaab-2"]
    assert [r.inference_id for r in journal.find("0190b")] == ["0190bbbb-3"]
    assert journal.find("0190a") == []  # ambiguous prefix
    assert [r.inference_id for r in journal.find("batch-x")] == ["0190bbbb-3"]
    assert journal.find("100%_") == []


def test_prune_forgets_only_old_finished_rows(journal):
    journal.add([record("old", status=Status.COMPLETED, finished_at=10.0),
                 record("new", status=Status.COMPLETED, finished_at=100.0),
                 record("pending", status=Status.PENDING)])
    assert journal.prune(finished_before=50.0) == 1
    assert journal.get("old") is None and journal.get("new") and journal.get("pending")


def test_delete_drops_empty_batches(journal):
    journal.add([record("a", batch_id="b1", batch_index=0)], BatchRecord("b1", "ep", 1))
    journal.delete(["a"])
    assert journal.get_batch("b1") is None


def test_corrupt_file_gives_clear_error_and_is_left_alone(tmp_path):
    path = tmp_path / "j.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="cannot be read.*move it aside"):
        Journal(path)
    assert path.read_bytes() == b"this is not a database" * 100


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "j.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="newer sm_async_nb"):
        Journal(path)


def test_two_connections_never_double_apply_a_transition(tmp_path):
    path = tmp_path / "j.sqlite3"
    first, second = Journal(path), Journal(path)
    first.add([record(f"id{i}", status=Status.PENDING) for i in range(200)])
    won: list[list[str]] = [[], []]

    def race(j, slot):
        for i in range(200):
            if j.update(f"id{i}", expect=Status.PENDING, status=Status.COMPLETED):
                won[slot].append(f"id{i}")

    threads = [threading.Thread(target=race, args=(j, n)) for n, j in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won[0] + won[1]) == sorted(f"id{i}" for i in range(200))
    assert not set(won[0]) & set(won[1])


def test_inference_ids_are_uuid7_and_sort_by_time():
    early, late = new_inference_id(1_700_000_000.0), new_inference_id(1_700_000_001.0)
    assert early < late
    assert early[14] == "7" and early[19] in "89ab"
    assert len({new_inference_id(5.0) for _ in range(1000)}) == 1000


def test_a_label_names_its_latest_submission_within_an_origin(journal):
    journal.add([record("first", label="again", submitted_at=1),
                 record("second", label="again", submitted_at=5),
                 InvocationRecord("elsewhere", "ep", origin="other", label="again", submitted_at=9)])
    assert [r.inference_id for r in journal.find("again", origin="o")] == ["second"]
    assert [r.inference_id for r in journal.find("again")] == ["elsewhere"]
    assert journal.find("elsewhere", origin="o") == []


def test_a_closed_journal_says_so(tmp_path):
    journal = Journal(tmp_path / "j.sqlite3")
    journal.close()
    with pytest.raises(JournalError, match="was closed with its client"):
        journal.get("x")
    journal.close()  # twice is harmless


FIXTURES = __import__("pathlib").Path(__file__).resolve().parent / "fixtures"


def test_a_version_1_journal_written_by_the_first_map_opens_and_migrates(tmp_path):
    # journal-v1.sqlite3 was written by the first map's code (schema 1), before schema 2 existed.
    path = tmp_path / "old.sqlite3"
    path.write_bytes((FIXTURES / "journal-v1.sqlite3").read_bytes())
    before = sqlite3.connect(path)
    assert before.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    before.close()
    journal = Journal(path)
    single = journal.get("0194f0a0-0000-7000-8000-000000000001")
    assert (single.status, single.label, single.request["accept"]) == (Status.PENDING, "first", "text/csv")
    batch = journal.get_batch("batch-run1")
    assert batch.kind.value == "dataframe" and batch.index_json and batch.label == "frame"
    parts = journal.query(batch_id="batch-run1")
    assert [p.status for p in parts] == [Status.COMPLETED, Status.FAILED]
    assert parts[1].failure_reason == "ModelError: boom"
    journal.close()
    after = sqlite3.connect(path)
    assert after.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    indexes = {r[0] for r in after.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "invocations_origin_time" in indexes  # what migration 2 adds
    after.close()
    assert Journal(path).get_batch("batch-run1") is not None  # opening again migrates nothing


def test_migrations_are_numbered_in_order_and_end_at_the_schema_version():
    from sm_async_nb.journal.schema import MIGRATIONS

    versions = [v for v, _ in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1)) and versions[-1] == SCHEMA_VERSION


def test_deleting_the_journal_file_under_a_client_is_an_error_not_silent_loss(tmp_path):
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    journal.add([record("a")])
    for leftover in tmp_path.glob("j.sqlite3*"):
        leftover.unlink()
    with pytest.raises(JournalError, match="deleted or replaced"):
        journal.add([record("b")])
    assert not path.exists()
