"""Tab completion of labels, batch ids and inference ids after ``%sm_async result|wait|forget|
resubmit|endpoint``, asked the way JupyterLab asks: a ``complete_request`` to a real kernel. What
it completes to must run as typed: a label with spaces, quotes, ``$`` or markup comes back quoted."""

from __future__ import annotations

import json
import textwrap

QUOTED_ITS = "'it'\"'\"'s'"  # shlex.quote("it's")

SETUP = textwrap.dedent("""
    import json, time
    from sm_async_nb.records import InvocationRecord, Status, SubmitStep, new_inference_id
    %load_ext sm_async_nb
    client = %sm_async client
    now = time.time()
    made = {}
    for i, (label, status, endpoint) in enumerate([
            ("my label <b>", Status.COMPLETED, "ep-one"), ("plain-one", Status.PENDING, "ep-one"),
            ("cost $5 {x}", Status.FAILED, "ep-two"), ("it's", Status.COMPLETED, "ep-two")]):
        iid = new_inference_id(now + i)
        made[label] = iid
        client.journal.add([InvocationRecord(iid, endpoint, origin=client.origin, status=status,
                            submit_step=SubmitStep.DONE, label=label, submitted_at=now + i)])
    print(json.dumps(made))
""")


def applied(code: str, reply: dict, match: str) -> str:
    return code[:reply["cursor_start"]] + match + code[reply["cursor_end"]:]


def test_complete_request_offers_quoted_labels_and_ids_that_run_as_typed(kernel):
    made = json.loads(kernel.execute(SETUP).stdout.strip().splitlines()[-1])

    reply = kernel.complete("%sm_async result my")
    assert reply["matches"] == ["'my label <b>'"]
    assert applied("%sm_async result my", reply, reply["matches"][0]) == "%sm_async result 'my label <b>'"

    reply = kernel.complete("%sm_async result 'my la")  # inside an open quote
    assert applied("%sm_async result 'my la", reply, reply["matches"][0]) == "%sm_async result 'my label <b>'"

    reply = kernel.complete("%sm_async result ")  # result: finished rows only, newest first
    assert reply["matches"][:2] == [QUOTED_ITS, '"cost $$5 {{x}}"']
    assert made["plain-one"] not in reply["matches"] and "plain-one" not in reply["matches"]

    assert "plain-one" in kernel.complete("%sm_async wait pl")["matches"]
    assert kernel.complete("%sm_async resubmit ")["matches"][0] == '"cost $$5 {{x}}"'
    iid = made["plain-one"]
    assert kernel.complete(f"%sm_async forget {iid[:-4]}")["matches"] == [iid]
    assert kernel.complete("%sm_async endpoint ep-")["matches"] == ["ep-one", "ep-two"]
    assert "plain-one" not in kernel.complete("%sm_async list ")["matches"]

    # The completed words parse back to the labels: forget them by what completion typed.
    for prefix in ("cost", "it"):
        code = f"%sm_async forget {prefix}"
        reply = kernel.complete(code)
        out = kernel.run(applied(code, reply, reply["matches"][0]))
        assert "Forgot 1 invocation(s)" in out, out
    out = kernel.run("print(sorted(r.label for r in client.records()))")
    assert out.strip() == "['my label <b>', 'plain-one']"
