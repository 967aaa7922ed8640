"""What a key a user types names (``sm_async_nb.lookup``): a full inference id, a label (its latest
submission), a batch id, a unique id prefix; within one AWS target when asked."""

from __future__ import annotations

import pytest

from sm_async_nb import lookup
from sm_async_nb.journal import Journal
from sm_async_nb.records import InvocationRecord


def record(iid, origin="o", **kw):
    return InvocationRecord(inference_id=iid, endpoint_name="ep", origin=origin,
                            submitted_at=kw.pop("submitted_at", 1.0), **kw)


@pytest.fixture
def journal():
    j = Journal(":memory:")
    yield j
    j.close()


def ids(rows):
    return [r.inference_id for r in rows]


def test_an_id_a_label_a_batch_or_a_unique_prefix(journal):
    journal.add([record("0190aaaa-1", label="night-run", batch_id="b1", batch_index=0),
                 record("0190aaab-2", label="night-run", batch_id="b1", batch_index=1),
                 record("0190bbbb-3", batch_id="batch-x", batch_index=0)])
    assert ids(lookup.find(journal, "0190aaab-2")) == ["0190aaab-2"]
    assert ids(lookup.find(journal, "night-run")) == ["0190aaaa-1", "0190aaab-2"]
    assert ids(lookup.find(journal, "0190b")) == ["0190bbbb-3"]
    assert lookup.find(journal, "0190a") == []  # ambiguous prefix
    assert ids(lookup.find(journal, "batch-x")) == ["0190bbbb-3"]
    assert lookup.find(journal, "100%_") == []  # no LIKE wildcards


def test_a_label_names_its_latest_submission_within_an_origin(journal):
    journal.add([record("first", label="again", submitted_at=1),
                 record("second", label="again", submitted_at=5),
                 record("elsewhere", origin="other", label="again", submitted_at=9)])
    assert ids(lookup.find(journal, "again", origin="o")) == ["second"]
    assert ids(lookup.find(journal, "again")) == ["elsewhere"]
    assert lookup.find(journal, "elsewhere", origin="o") == []


def test_a_labelled_batch_rerun_names_the_rerun_whole(journal):
    journal.add([record("r1-0", label="job", batch_id="batch-r1", batch_index=0, submitted_at=1),
                 record("r1-1", label="job", batch_id="batch-r1", batch_index=1, submitted_at=1),
                 record("r2-0", label="job", batch_id="batch-r2", batch_index=0, submitted_at=2)])
    assert ids(lookup.find(journal, "job")) == ["r2-0"]


def test_prefixes_are_case_sensitive_like_ids(journal):
    journal.add([record("Upper-1", submitted_at=1.0), record("upper-2", submitted_at=2.0)])
    assert ids(lookup.find(journal, "upper")) == ["upper-2"]
    assert ids(lookup.find(journal, "Upp")) == ["Upper-1"]
