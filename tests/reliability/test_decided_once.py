"""Decided once, trusted later (issue 22, mechanism 1): what a first file, a first window of outputs or a
check before writing showed is never taken for the whole.

What decides: a dataset's schema is unified from every file before anything is sent (hive partition
folders included), so a later column is sent and a type change is widened or refused up front; integer
slices with nulls stay integers on the way out and back; write_results widens its schema when a later
part needs it (writing again from the first part) and keeps the input index; its commit replaces only
what the check saw (os.link / mkdir / identity locally, IfNoneMatch / IfMatch on S3)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sm_async_nb as sma
from sm_async_nb.results import writer as results_writer

BIG = 2**53 + 1  # a float64 cannot hold it


def echo(body: bytes, content_type: str):
    return body, content_type or "text/csv"


def late_nulls(body: bytes, content_type: str):
    """JSON records whose "score" is null in the first parts and a number from part 40 on, and whose
    "extra" column only the last parts have."""
    rows = [line.split(",") for line in body.decode().splitlines() if line]
    out = [{"n": int(r[0]), "score": None if int(r[0]) < 40 else int(r[0]) * 10} for r in rows]
    for item in out:
        if item["n"] >= 45:
            item["extra"] = "late"
        if item["n"] >= 47:
            item["score"] = item["n"] + 0.5  # an integer column turns float
    return "\n".join(json.dumps(o) for o in out).encode(), "application/jsonlines"


def doubles_late(body: bytes, content_type: str):
    """One row per input row, except the row 35 (in write_results' second window), which gets two."""
    return (body * 2 if body.startswith(b"35") else body), "text/csv"


def picky(body: bytes, content_type: str):
    if b"fail" in body:
        raise ValueError("this row is refused by the model")
    return body, "text/csv"


@pytest.fixture(scope="module")
def endpoints(stack):
    stack.add_endpoint("once-echo", model=echo)
    stack.add_endpoint("once-late", model=late_nulls)
    stack.add_endpoint("once-picky", model=picky)
    stack.add_endpoint("once-doubles", model=doubles_late)
    return {"echo": "once-echo", "late": "once-late", "picky": "once-picky", "doubles": "once-doubles"}


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=8) as c:
        yield c


def _sent(stack) -> int:
    return len(stack.records())


# --- datasets: one schema from every file ----------------------------------------------------------

def test_a_column_only_later_files_have_is_sent(client, endpoints, tmp_path):
    folder = tmp_path / "later-col"
    folder.mkdir()
    pq.write_table(pa.table({"a": [1, 2]}), folder / "f1.parquet")
    pq.write_table(pa.table({"a": [3, 4], "b": ["x", "y"]}), folder / "f2.parquet")
    everything = client.submit_dataset(endpoints["echo"], folder, rows_per_request=1,
                                       content_type="application/json").wait(timeout=60)
    assert [json.loads(inv.raw()) for inv in everything] == [[[1, None]], [[2, None]], [[3, "x"]], [[4, "y"]]]
    chosen = client.submit_dataset(endpoints["echo"], folder, rows_per_request=2, columns=["b", "a"]).wait(timeout=60)
    assert [inv.raw() for inv in chosen] == [b",1\n,2\n", b"x,3\ny,4\n"]


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_an_integer_column_that_turns_float_later_is_widened_up_front(client, endpoints, stack, tmp_path, kind):
    folder = tmp_path / f"widen-{kind}"
    folder.mkdir()
    frames = [pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [3.5, 4.25]})]
    for i, frame in enumerate(frames):
        if kind == "parquet":
            frame.to_parquet(folder / f"f{i}.parquet")
        else:
            frame.to_csv(folder / f"f{i}.csv", index=False)
    batch = client.submit_dataset(endpoints["echo"], folder, rows_per_request=3).wait(timeout=60)
    assert batch.result()[0].tolist() == [1.0, 2.0, 3.5, 4.25]


@pytest.mark.parametrize("second, words", [
    (pa.table({"a": ["x", "y"]}), "column 'a' is string in"),
    (pa.table({"a": pa.array([2**63 + 5, 1], pa.uint64())}), "cannot hold every uint64 value"),
    (pa.table({"a": [True, False]}), "column 'a' is bool in"),
])
def test_columns_that_cannot_be_one_are_refused_before_anything_is_sent(client, endpoints, stack, tmp_path,
                                                                        second, words):
    folder = tmp_path / "conflict"
    folder.mkdir()
    pq.write_table(pa.table({"a": [1, 2], "keep": [1, 2]}), folder / "f1.parquet")
    pq.write_table(second.append_column("keep", pa.array([3, 4])), folder / "f2.parquet")
    before = _sent(stack)
    with pytest.raises(sma.ValidationError) as caught:
        client.submit_dataset(endpoints["echo"], folder, rows_per_request=1)
    message = str(caught.value)
    assert words in message and "f2.parquet" in message and "nothing was sent" in message and "\n" not in message
    assert _sent(stack) == before and client.records() == []
    ok = client.submit_dataset(endpoints["echo"], folder, rows_per_request=4, columns=["keep"]).wait(timeout=60)
    assert ok.result()[0].tolist() == [1, 2, 3, 4]  # the conflict is only refused when that column is sent


def test_hive_partition_columns_are_selectable_and_sent(client, endpoints, tmp_path, stack):
    root = tmp_path / "hive"
    for year, values in ((2024, [1, 2]), (2025, [3])):
        (root / f"year={year}" / "region=eu").mkdir(parents=True)
        pq.write_table(pa.table({"a": values}), root / f"year={year}" / "region=eu" / "part.parquet")
    chosen = client.submit_dataset(endpoints["echo"], root, rows_per_request=3, columns=["a", "year"])
    assert chosen.wait(timeout=60).result().values.tolist() == [[1, 2024], [2, 2024], [3, 2025]]
    every = client.submit_dataset(endpoints["echo"], root, rows_per_request=3).wait(timeout=60)
    assert every.result().values.tolist() == [[1, 2024, "eu"], [2, 2024, "eu"], [3, 2025, "eu"]]
    globbed = client.submit_dataset(endpoints["echo"], str(root / "year=*" / "*" / "*.parquet"), rows_per_request=3,
                                    columns=["year"]).wait(timeout=60)
    assert globbed.result()[0].tolist() == [2024, 2024, 2025]
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="once-hive")
    for path in root.rglob("*.parquet"):
        s3.upload_file(str(path), "once-hive", f"t/{path.relative_to(root).as_posix()}")
    remote = client.submit_dataset(endpoints["echo"], "s3://once-hive/t/", rows_per_request=3,
                                   columns=["region", "a"]).wait(timeout=60)
    assert remote.result().values.tolist() == [["eu", 1], ["eu", 2], ["eu", 3]]
    with pytest.raises(sma.ValidationError, match=r"has no column 'month' \(it has: a, year, region\)"):
        client.submit_dataset(endpoints["echo"], root, columns=["month"])


# --- types survive the trip ------------------------------------------------------------------------

@pytest.mark.parametrize("content_type, first, second", [
    ("text/csv", b'1\n""\n', f"3\n{BIG}\n".encode()),  # "" is an empty value in a one-column CSV
    ("application/json", b"[[1],[null]]", f"[[3],[{BIG}]]".encode()),
])
def test_an_integer_column_with_a_null_is_sent_as_integers(client, endpoints, tmp_path, content_type, first, second):
    path = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"id": pa.array([1, None, 3, BIG], pa.int64())}), path, row_group_size=2)
    batch = client.submit_dataset(endpoints["echo"], path, rows_per_request=2, content_type=content_type)
    batch.wait(timeout=60)
    assert [inv.raw() for inv in batch] == [first, second]
    back = batch.result()
    assert back[0].tolist()[0] == 1 and back[0].tolist()[2:] == [3, BIG] and pd.isna(back[0].tolist()[1])
    assert str(back[0].dtype) == "Int64"


def test_a_dataframe_with_nullable_integers_comes_back_exact(client, endpoints):
    frame = pd.DataFrame({"id": pd.array([BIG, None, 7], dtype="Int64"), "x": [1.5, 2.5, 3.5]})
    back = client.submit_dataframe(endpoints["echo"], frame, rows_per_request=2).wait(timeout=60).result()
    assert back[0].tolist()[0] == BIG and back[0].tolist()[2] == 7 and pd.isna(back[0].tolist()[1])
    assert back[1].tolist() == [1.5, 2.5, 3.5]


# --- write_results: its schema and index are not frozen by the first parts -------------------------

def test_write_results_widens_for_later_parts(client, endpoints, tmp_path):
    frame = pd.DataFrame({"n": range(50)})
    batch = client.submit_dataframe(endpoints["late"], frame, rows_per_request=1, accept="application/jsonlines")
    batch.wait(timeout=120)
    out = batch.write_results(tmp_path / "late.parquet")
    back = pd.read_parquet(out)
    expected = batch.result()
    assert back.index.tolist() == list(range(50))
    assert back["n"].tolist() == list(range(50))
    assert back["score"].tolist()[:40] == [None] * 40 or back["score"].iloc[:40].isna().all()
    assert back["score"].tolist()[40:47] == [n * 10 for n in range(40, 47)]
    assert back["score"].tolist()[47:] == [47.5, 48.5, 49.5]
    assert back["extra"].iloc[:45].isna().all() and back["extra"].tolist()[45:] == ["late"] * 5
    assert back["score"].iloc[40:].tolist() == expected["score"].iloc[40:].tolist()


def test_write_results_with_errors_skip_keeps_the_input_index(client, endpoints, tmp_path):
    frame = pd.DataFrame({"v": ["ok", "fail", "ok", "ok", "fail", "ok"]}, index=pd.Index(list("abcdef"), name="key"))
    batch = client.submit_dataframe(endpoints["picky"], frame, rows_per_request=1).wait(timeout=60)
    out = batch.write_results(tmp_path / "skip.parquet", errors="skip")
    back = pd.read_parquet(out)
    assert back.index.tolist() == ["a", "c", "d", "f"] and back.index.name == "key"
    joined = frame.join(back, how="inner")
    assert joined["v"].tolist() == joined["0"].tolist() == ["ok"] * 4
    folder = batch.write_results(tmp_path / "skip-folder", errors="skip")
    assert pd.read_parquet(folder).index.tolist() == ["a", "c", "d", "f"]


def test_a_later_part_that_does_not_align_drops_the_index_not_the_rows(client, endpoints, tmp_path):
    frame = pd.DataFrame({"n": range(40)}, index=[f"r{i}" for i in range(40)])
    batch = client.submit_dataframe(endpoints["doubles"], frame, rows_per_request=1).wait(timeout=120)
    expected = batch.result()
    assert expected.attrs["aligned"] is False
    back = pd.read_parquet(batch.write_results(tmp_path / "unaligned.parquet"))
    assert back["0"].tolist() == expected[0].tolist() and len(back) == 41  # written again, without an index
    assert back.index.tolist() == list(range(41))


def test_write_results_of_a_dataset_keeps_its_row_numbers(client, endpoints, tmp_path):
    path = tmp_path / "rows.csv"
    pd.DataFrame({"v": ["ok", "fail", "ok", "ok"]}).to_csv(path, index=False)
    batch = client.submit_dataset(endpoints["picky"], path, rows_per_request=1).wait(timeout=60)
    back = pd.read_parquet(batch.write_results(tmp_path / "rows.parquet", errors="skip"))
    assert back.index.tolist() == [0, 2, 3]


# --- write_results commits without replacing what appeared meanwhile -------------------------------

@pytest.fixture
def batch(client, endpoints):
    return client.submit_dataframe(endpoints["echo"], pd.DataFrame({"a": range(40)}), rows_per_request=1).wait(
        timeout=120)


def _appear_during_the_write(monkeypatch, make):
    """Run ``make()`` while write_results is writing (when the second window of outputs is loaded)."""
    load = results_writer.load_frame

    def loading(ctx, record, **kwargs):
        if record.batch_index == 35:
            make()
        return load(ctx, record, **kwargs)

    monkeypatch.setattr(results_writer, "load_frame", loading)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def test_a_file_that_appears_during_the_write_is_not_replaced(batch, tmp_path, monkeypatch):
    dest = tmp_path / "scored.parquet"
    _appear_during_the_write(monkeypatch, lambda: dest.write_bytes(b"someone else's results"))
    with pytest.raises(sma.ValidationError, match="appeared or changed while the results were written"):
        batch.write_results(dest)
    assert dest.read_bytes() == b"someone else's results" and _leftovers(tmp_path) == []


def test_a_file_replaced_during_an_overwrite_is_not_replaced(batch, tmp_path, monkeypatch):
    dest = tmp_path / "scored.parquet"
    dest.write_bytes(b"old results")

    def replaced():
        dest.unlink()
        dest.write_bytes(b"newer results from another kernel")

    _appear_during_the_write(monkeypatch, replaced)
    with pytest.raises(sma.ValidationError, match="appeared or changed"):
        batch.write_results(dest, overwrite=True)
    assert dest.read_bytes() == b"newer results from another kernel"


@pytest.mark.parametrize("exists", [False, True], ids=["new-folder", "empty-folder"])
def test_a_part_that_appears_in_the_folder_during_the_write_is_not_replaced(batch, tmp_path, monkeypatch, exists):
    folder = tmp_path / "scored"
    if exists:
        folder.mkdir()

    def appear():
        folder.mkdir(exist_ok=True)
        (folder / "part-00000.parquet").write_bytes(b"another writer's part")

    _appear_during_the_write(monkeypatch, appear)
    with pytest.raises(sma.ValidationError, match="appeared or changed"):
        batch.write_results(folder)
    assert sorted(os.listdir(folder)) == ["part-00000.parquet"]
    assert (folder / "part-00000.parquet").read_bytes() == b"another writer's part"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("dest, key", [("s3://once-race/one.parquet", "one.parquet"),
                                       ("s3://once-race/scored/", "scored/part-00000.parquet")])
def test_an_s3_object_that_appears_during_the_write_is_not_replaced(batch, stack, monkeypatch, dest, key):
    s3 = stack.boto3_client("s3")
    if "once-race" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="once-race")
    _appear_during_the_write(monkeypatch, lambda: s3.put_object(Bucket="once-race", Key=key, Body=b"someone else's"))
    with pytest.raises(sma.ValidationError, match="appeared or changed"):
        batch.write_results(dest)
    assert s3.get_object(Bucket="once-race", Key=key)["Body"].read() == b"someone else's"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="once-race", Prefix=key.split("/")[0])["Contents"]] == [key]
    assert s3.list_multipart_uploads(Bucket="once-race").get("Uploads", []) == []


# --- the detached stack's state file: every field read back is checked ----------------------------

@pytest.mark.parametrize("where, field, value", [
    ("info", "pid", "12345"), ("info", "pid", True), ("info", "pid", -4), ("info", "host", "attacker.example"),
    ("info", "host", ["127.0.0.1"]), ("info", "moto_port", "5000"), ("info", "runtime_port", 70000),
    ("info", "runtime_port", None), ("info", "region", {"r": 1}), ("info", "endpoint_name", "bad name!"),
    ("info", "output_path", "/local/path"), ("record", "create_time", "yesterday"), ("record", "token", 12345),
    ("record", "token", ""), ("record", "idle_timeout", "8h"), ("record", "idle_timeout", float("nan")),
    ("record", "endpoints", "local-async"), ("record", "endpoints", [1, 2]), ("info", "pid", None),
])
def test_a_state_file_field_of_the_wrong_type_is_never_trusted(tmp_path, monkeypatch, caplog, where, field, value):
    import psutil

    from sm_async_nb.local.detached import handle as detached
    from sm_async_nb.local.detached import statefile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = statefile.state_path()
    info = {"pid": os.getpid(), "host": "127.0.0.1", "moto_port": 1, "runtime_port": 2, "region": "us-east-1",
            "endpoint_name": "local-async", "input_bucket": "b", "output_path": "s3://b/o/", "failure_path": "s3://b/f/"}
    record = {"info": info, "create_time": psutil.Process().create_time(), "token": "secret", "idle_timeout": 60.0,
              "endpoints": ["local-async"]}
    (info if where == "info" else record)[field] = value
    path.write_text(json.dumps(record))
    os.chmod(path, 0o600)
    assert statefile.read(path) is None  # corrupt: replaced, never followed
    assert f"{field} is" in caplog.text and "corrupt" in caplog.text
    found = detached.find()
    assert found.stack is None and found.stale == "corrupt"
