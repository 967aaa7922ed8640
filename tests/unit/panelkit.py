"""Helpers of the panel's unit tests: journal rows as the client writes them, outputs and failures
written to (in-process) moto, and what a panel's view shows once its loop has drawn."""

from __future__ import annotations

import time

from sm_async_nb.aws.s3uri import S3Uri
from sm_async_nb.records import InvocationRecord, Status, SubmitStep, new_inference_id

START = float(int(time.time()) - 3600)  # an hour ago: outputs written now are newer than these invokes
NOW = START + 100.0


def pending(client, count, *, start=START, endpoint="ep", label="row", batch=None, step=1.0, **extra):
    """Journal rows as the client writes them after a successful invoke (newest last)."""
    rows = []
    for i in range(count):
        iid = new_inference_id(start + i * step)
        rows.append(InvocationRecord(
            inference_id=iid, endpoint_name=endpoint, origin=client.origin, status=Status.PENDING,
            submit_step=SubmitStep.DONE, label=f"{label}{i}" if label else None,
            input_location=f"s3://input-bucket/payloads/{iid}.csv",
            output_location=f"s3://out/outputs/{iid}.out", failure_location=f"s3://out/failures/{iid}-error.out",
            submitted_at=start + (0 if batch else i * step), invoked_at=start,
            batch_id=batch.batch_id if batch else None, batch_index=i if batch else None, **extra))
    client.journal.add(rows, batch=batch)
    return rows


def bucket_key(location):
    uri = S3Uri.parse(location)
    return {"Bucket": uri.bucket, "Key": uri.key}


def complete(s3, rows, body=b"1,2\n", content_type="text/csv"):
    for r in rows:
        s3.put_object(**bucket_key(r.output_location), Body=body, ContentType=content_type)


def fail(s3, rows, reason):
    for r in rows:
        s3.put_object(**bucket_key(r.failure_location), Body=reason.encode())


def drawn(panel):
    """The panel's view once everything posted so far (clicks, refreshes, answers) is drawn."""
    assert panel.wait_idle(), "the panel did not settle"
    return panel.view


def shown(panel):
    """What the visible rows show: (label, endpoint, short id, status html, timing, size)."""
    table = drawn(panel).table
    slots = table.slots[:len(table.box.children) - 1]
    return [(s.label.value, s.endpoint.value, s.ident.description, s.status.value, s.timing.value, s.size.value)
            for s in slots if s.inference_id]


def statuses(panel):
    return [next(st.value for st in Status if f">{st.value}<" in row[3]) for row in shown(panel)]


def slot_of(panel, inference_id):
    return next(s for s in drawn(panel).table.slots if s.inference_id == inference_id)


def tick(panel, *inference_ids):
    """What a click on a row's checkbox does (the frontend sets the value)."""
    for slot in drawn(panel).table.slots:
        if slot.inference_id in inference_ids:
            slot.check.value = True
