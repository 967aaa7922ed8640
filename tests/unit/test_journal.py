"""The SQLite journal: its named verbs and their compare-and-set transitions, corruption and schema
guards. (What a user's key names, labels and prefixes, is tests/unit/test_lookup.py.)"""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest

from sm_async_nb.errors import JournalError
from sm_async_nb.journal import SCHEMA_VERSION, Journal
from sm_async_nb.journal.store import Claim
from sm_async_nb.records import BatchRecord, Finish, InvocationRecord, Status, SubmitStep, new_inference_id


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


def test_finish_applies_a_transition_once_and_only_from_pending(journal):
    journal.add([record("a", status=Status.PENDING), record("e", status=Status.ERROR)])
    assert journal.finish([Finish("a", Status.COMPLETED, 5.0, output_size=3), Finish("e", Status.FAILED, 5.0)]) == ["a"]
    assert journal.finish([Finish("a", Status.FAILED, 6.0, failure_reason="late")]) == []
    a = journal.get("a")
    assert (a.status, a.finished_at, a.output_size, a.failure_reason) == (Status.COMPLETED, 5.0, 3, None)
    assert journal.get("e").status is Status.ERROR
    with pytest.raises(ValueError, match="COMPLETED, FAILED or EXPIRED"):
        journal.finish([Finish("a", Status.ERROR)])


def test_a_submission_moves_through_its_verbs_only_while_this_process_owns_it(journal):
    journal.add([record("a"), record("theirs", owner_pid=os.getpid() + 1)])
    assert journal.mark_invoking("a") and journal.get("a").submit_step is SubmitStep.INVOKING
    assert journal.mark_pending("a", output_location="s3://o/a.out", failure_location="s3://f/a-error.out",
                                invoked_at=7.0, deadline=970.0)
    a = journal.get("a")
    assert (a.status, a.submit_step, a.output_location, a.invoked_at, a.deadline) == (
        Status.PENDING, SubmitStep.DONE, "s3://o/a.out", 7.0, 970.0)
    assert not journal.mark_invoking("a") and not journal.mark_not_sent("a", "too late", input_written=False)
    assert not journal.mark_invoking("theirs")  # another process's row is never sent by this one
    assert not journal.mark_not_sent("theirs", "no", input_written=False)
    assert journal.get("theirs").status is Status.SUBMITTING


def test_not_sent_says_where_the_input_is(journal):
    journal.add([record("kept", input_location="s3://b/kept.csv"), record("gone", input_location="s3://b/gone.csv")])
    assert journal.mark_not_sent("kept", "AccessDenied", input_written=True)
    assert journal.mark_not_sent("gone", "Not sent", input_written=False)
    kept, gone = journal.get("kept"), journal.get("gone")
    assert (kept.status, kept.error, kept.input_location) == (Status.ERROR, "AccessDenied", "s3://b/kept.csv")
    assert (gone.status, gone.input_location) == (Status.ERROR, None) and gone.finished_at is not None
    assert journal.restate_errors({"gone": "Not resubmitted: lost", "missing": "x"}) == ["gone"]
    assert journal.get("gone").error == "Not resubmitted: lost"


def test_claiming_for_submission_is_compare_and_set_on_status_and_owner(journal):
    dead = os.getpid() + 1
    journal.add([record("err", status=Status.ERROR, error="x", finished_at=3.0),
                 record("orphan", owner_pid=dead), record("done", status=Status.PENDING)])
    claims = [Claim("err", Status.ERROR, os.getpid(), 9.0, "s3://b/err.csv"),
              Claim("orphan", Status.SUBMITTING, dead, 9.0, None),
              Claim("done", Status.ERROR, os.getpid(), 9.0, None)]  # read as ERROR, but PENDING now
    assert journal.claim_for_submission(claims) == {"err", "orphan"}
    err = journal.get("err")
    assert (err.status, err.error, err.finished_at, err.owner_pid, err.input_location) == (
        Status.SUBMITTING, None, None, os.getpid(), "s3://b/err.csv")
    assert journal.claim_for_submission(claims) == set()  # a second claimant loses
    assert journal.get("done").status is Status.PENDING


def test_recovering_dead_owners_turns_only_their_rows_to_error(journal):
    dead = os.getpid() + 1
    journal.add([record("mine"), record("dead", owner_pid=dead, submit_step=SubmitStep.INVOKING),
                 InvocationRecord("elsewhere", "ep", origin="other", owner_pid=dead)])
    recovered = journal.recover_dead_owners("o", lambda pid: pid != dead, lambda r: f"died at {r.submit_step.value}")
    assert recovered == ["dead"]
    row = journal.get("dead")
    assert (row.status, row.error, row.submit_step) == (Status.ERROR, "died at invoking", SubmitStep.DONE)
    assert journal.get("mine").status is journal.get("elsewhere").status is Status.SUBMITTING


def test_a_resubmission_is_claimed_once_and_a_dangling_pointer_released(journal):
    journal.add([record("failed", status=Status.FAILED)])
    assert journal.claim_resubmission("failed", "new-1")
    assert not journal.claim_resubmission("failed", "new-2")
    assert not journal.release_resubmission("failed", "new-2")
    assert journal.release_resubmission("failed", "new-1") and journal.get("failed").resubmitted_as is None


def test_reads_by_name(journal):
    journal.add([record("p1", status=Status.PENDING, submitted_at=2.0, batch_id="b", batch_index=1,
                        invoked_at=2.0, request={"request_ttl_seconds": 60, "invocation_timeout_seconds": 10}),
                 record("p0", status=Status.PENDING, submitted_at=1.0, batch_id="b", batch_index=0, deadline=50.0),
                 record("p0-again", status=Status.COMPLETED, submitted_at=3.0, batch_id="b", batch_index=0,
                        invoked_at=2.5, finished_at=4.0),
                 InvocationRecord("x", "ep", origin="other", status=Status.PENDING, submitted_at=0.5)],
                BatchRecord("b", "ep", 2))
    assert [r.inference_id for r in journal.batch_rows("b")] == ["p0", "p1", "p0-again"]
    assert [r.inference_id for r in journal.batch_parts("b")] == ["p0-again", "p1"]
    assert [r.inference_id for r in journal.records(origin="o", statuses=[Status.PENDING])] == ["p0", "p1"]
    assert {r.inference_id: r.deadline for r in journal.pending("o")} == {"p0": 50.0, "p1": 2.0 + 60 + 10}
    assert journal.counts("o") == {Status.PENDING: 2, Status.COMPLETED: 1} and sum(journal.counts().values()) == 4
    assert journal.completions("o", "ep", 3.5, [Status.COMPLETED]) == (1, 2.5)
    assert journal.completions("o", "ep", 4.5, [Status.COMPLETED]) == (0, None)
    assert set(journal.get_many(["p1", "nope", "x"])) == {"p1", "x"}


def test_prune_forgets_only_old_finished_rows(journal):
    journal.add([record("old", status=Status.COMPLETED, finished_at=10.0),
                 record("new", status=Status.COMPLETED, finished_at=100.0),
                 record("pending", status=Status.PENDING)])
    assert journal.prune(finished_before=50.0) == 1
    assert journal.get("old") is None and journal.get("new") and journal.get("pending")


def test_forget_drops_empty_batches(journal):
    journal.add([record("a", batch_id="b1", batch_index=0), record("b", batch_id="b2", batch_index=0)],
                BatchRecord("b1", "ep", 1))
    journal.add([], BatchRecord("b2", "ep", 1))
    assert journal.forget(["a", "never-there"]) == 1
    assert journal.get_batch("b1") is None and journal.get_batch("b2") is not None


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
            won[slot] += j.finish([Finish(f"id{i}", Status.COMPLETED if slot else Status.EXPIRED)])

    threads = [threading.Thread(target=race, args=(j, n)) for n, j in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won[0] + won[1]) == sorted(f"id{i}" for i in range(200))
    assert not set(won[0]) & set(won[1])
    statuses = {r.inference_id: r.status for r in first.records()}
    assert {i for i, s in statuses.items() if s is Status.COMPLETED} == set(won[1])  # each row as its winner wrote


def test_inference_ids_are_uuid7_and_sort_by_time():
    early, late = new_inference_id(1_700_000_000.0), new_inference_id(1_700_000_001.0)
    assert early < late
    assert early[14] == "7" and early[19] in "89ab"
    assert len({new_inference_id(5.0) for _ in range(1000)}) == 1000


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
    parts = journal.batch_rows("batch-run1")
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


def test_an_interrupt_right_after_begin_leaves_no_transaction_open(journal):
    """Ctrl-C (or interrupt_main) can land just after BEGIN, before the block that rolls back: the next
    change must not fail with "cannot start a transaction within a transaction" (seen in a kernel test)."""
    real = journal._db

    class InterruptedAfterBegin:
        armed = True

        def execute(self, sql, *args):
            result = real.execute(sql, *args)
            if sql == "BEGIN IMMEDIATE" and self.armed:
                self.armed = False
                raise KeyboardInterrupt
            return result

        def __getattr__(self, name):
            return getattr(real, name)

    journal._db = InterruptedAfterBegin()
    with pytest.raises(KeyboardInterrupt):
        journal.add([record("lost")])
    journal.add([record("kept")])
    assert journal.get("kept") is not None and journal.get("lost") is None
    journal._db = real
