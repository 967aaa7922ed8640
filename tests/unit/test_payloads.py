"""codecs: payload encoding, content-type inference and output decoding (SPEC §3, §7)."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from sm_async_nb import payloads as codecs
from sm_async_nb.errors import DecodeError, ValidationError
from sm_async_nb.payloads import (
    CONTENT_TYPE_RULES,
    MAX_S3_PAYLOAD,
    EncodedPayload,
    decode,
    encode,
    infer_content_type,
    media_type,
    suffix_for,
)

JSONL_TYPES = ["application/jsonlines", "application/x-jsonlines", "application/x-ndjson"]
PARQUET_TYPES = ["application/x-parquet", "application/parquet", "application/vnd.apache.parquet"]


def frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 0.1 + 0.2, -3.25], "c": ["x", "ü", "z,q"]})


def numeric_frame() -> pd.DataFrame:
    return pd.DataFrame({"f0": [1.5, 2.25, 0.1 + 0.2], "f1": [4.0, 5.0, 6.0]})


def roundtrip(payload, content_type=None, **kwargs) -> pd.DataFrame:
    encoded = encode(payload, content_type, **kwargs)
    return decode(encoded.body, encoded.content_type, csv_header=kwargs.get("csv_header", False))


def values(df: pd.DataFrame) -> list:
    return df.to_numpy(dtype=object).tolist()


# -- media types, suffixes, the rule text ------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    ("Text/CSV; charset=utf-8", "text/csv"), ("application/json", "application/json"),
    ("  APPLICATION/X-NPY ", "application/x-npy"), (None, None), ("", None), ("; charset=x", None),
])
def test_media_type(given, expected):
    assert media_type(given) == expected


@pytest.mark.parametrize("content_type, suffix", [
    ("text/csv", ".csv"), ("application/json; charset=utf-8", ".json"), ("application/x-ndjson", ".jsonl"),
    ("application/vnd.apache.parquet", ".parquet"), ("application/x-npy", ".npy"), ("text/plain", ".txt"),
    ("application/octet-stream", ".bin"), ("image/png", ".png"), ("application/x-made-up", ".bin"),
    ("", ".bin"),
])
def test_suffix_for(content_type, suffix):
    assert suffix_for(content_type) == suffix


def test_rule_text_mentions_every_payload_type():
    for word in ("str", "bytes", "dict", "DataFrame", "numpy", "pathlib.Path", "text/csv",
                 "application/json", "application/x-npy", "application/octet-stream", "1 GB"):
        assert word in CONTENT_TYPE_RULES
    from sm_async_nb.payloads import decode, encode

    assert encode.__doc__ and decode.__doc__
    assert "allow_pickle=False" in sys.modules["sm_async_nb.payloads.encoding"].__doc__
    assert "allow_pickle=False" in sys.modules["sm_async_nb.payloads.decoding"].__doc__


def test_importing_codecs_does_not_import_pandas_or_numpy():
    code = ("import sys, sm_async_nb.payloads as c; c.encode('a,b'); c.encode({'a': 1}); "
            "assert not {'pandas', 'numpy', 'pyarrow'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(codecs.__file__).parents[2])


# -- inference ---------------------------------------------------------------------------------

@pytest.mark.parametrize("payload, expected", [
    ("1,2,3\n4,5,6\n", "text/csv"),
    ('{"instances": [1, 2]}', "application/json"),
    ("  \n [1, 2, 3]", "application/json"),
    ("[1, 2", "text/csv"),                     # looks like JSON, does not parse
    ("[NaN]", "text/csv"),                     # not strict JSON
    ('"just a string"', "text/csv"),           # valid JSON, but not an object/array
    ("42", "text/csv"),
    (b"\x00\x01", "application/octet-stream"), (bytearray(b"x"), "application/octet-stream"),
    (memoryview(b"x"), "application/octet-stream"),
    ({"a": 1}, "application/json"), ([1, 2], "application/json"), ((1, 2), "application/json"),
    (pd.DataFrame({"a": [1]}), "text/csv"), (pd.Series([1]), "text/csv"),
    (np.arange(3), "application/x-npy"),
])
def test_infer_content_type(payload, expected):
    assert infer_content_type(payload) == expected


def test_default_content_type_only_applies_to_non_json_str():
    assert infer_content_type("hello", default_content_type="text/plain") == "text/plain"
    assert infer_content_type("[1]", default_content_type="text/plain") == "application/json"
    assert encode("hello", default_content_type="text/plain").content_type == "text/plain"


@pytest.mark.parametrize("name, expected", [
    ("d.csv", "text/csv"), ("d.CSV", "text/csv"), ("d.json", "application/json"),
    ("d.jsonl", "application/jsonlines"), ("d.ndjson", "application/jsonlines"),
    ("d.parquet", "application/x-parquet"), ("d.npy", "application/x-npy"), ("d.txt", "text/plain"),
    ("d.png", "image/png"), ("d.wav", "audio/x-wav"), ("d.csv.gz", "application/octet-stream"),
    ("d.unknownext", "application/octet-stream"), ("noext", "application/octet-stream"),
])
def test_infer_content_type_of_paths(name, expected):
    assert infer_content_type(Path(name)) == expected


# -- str and bytes: sent as they are -----------------------------------------------------------

@pytest.mark.parametrize("text", ["1,2\n3,4\n\n", "a,b\r\nc,d\r\n", "  spaced  \t", "héllo, 世界 🚀\n",
                                  '{"a": 1}\n'])
def test_str_sent_byte_for_byte(text):
    encoded = encode(text)
    assert encoded.body == text.encode("utf-8")
    assert encoded.size == len(text.encode("utf-8"))
    assert encoded.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert encoded.open().read() == encoded.body and encoded.path is None


def test_json_looking_str_is_sent_as_json_unchanged():
    text = ' {"instances": [[1, 2]]}\n'
    encoded = encode(text)
    assert (encoded.content_type, encoded.suffix) == ("application/json", ".json")
    assert encoded.body == text.encode()


def test_explicit_content_type_kept_exactly_and_str_not_reserialised():
    encoded = encode("[1, 2]", "Text/CSV; charset=UTF-8")
    assert encoded.content_type == "Text/CSV; charset=UTF-8"
    assert (encoded.body, encoded.suffix) == (b"[1, 2]", ".csv")


@pytest.mark.parametrize("payload", [b"\x00\xffraw", bytearray(b"\x00\xffraw"), memoryview(b"\x00\xffraw")])
def test_bytes_sent_as_is(payload):
    encoded = encode(payload, "image/png")
    assert (encoded.body, encoded.content_type, encoded.suffix) == (b"\x00\xffraw", "image/png", ".png")
    assert isinstance(encoded.body, bytes)


def test_encoded_payload_is_frozen():
    with pytest.raises(AttributeError):
        encode("x").body = b"y"


# -- dict / list -------------------------------------------------------------------------------

def test_dict_compact_json_with_numpy_values_and_dates():
    payload = {"x": np.int64(3), "y": np.float32(0.5), "z": np.array([[1, 2]]),
               "t": pd.Timestamp("2024-01-02"), "s": "é", "n": None, "b": np.bool_(True)}
    encoded = encode(payload)
    assert encoded.content_type == "application/json"
    assert encoded.body.decode() == ('{"x":3,"y":0.5,"z":[[1,2]],"t":"2024-01-02T00:00:00",'
                                     '"s":"é","n":null,"b":true}')


def test_nan_and_infinity_become_null():
    payload = [1.0, float("nan"), np.float32("nan"), float("inf"), {"k": -np.inf}, np.array([np.nan])]
    body = encode(payload).body
    assert body == b'[1.0,null,null,null,{"k":null},[null]]'
    assert json.loads(body) == [1.0, None, None, None, {"k": None}, [None]]


def test_tuple_and_list_of_records():
    assert encode((1, "a")).body == b'[1,"a"]'
    assert encode([{"a": 1}, {"a": 2}]).body == b'[{"a":1},{"a":2}]'


def test_list_as_json_lines_is_one_line_per_item():
    encoded = encode([{"a": 1}, [2, 3], 4], "application/jsonlines")
    assert encoded.body == b'{"a":1}\n[2,3]\n4\n' and encoded.suffix == ".jsonl"
    assert encode({"a": 1}, "application/x-ndjson").body == b'{"a":1}\n'


def test_dict_with_vendor_json_type_is_json():
    assert encode({"a": 1}, "application/vnd.api+json").body == b'{"a":1}'


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-npy", "application/x-parquet"])
def test_list_with_non_json_type_is_refused(content_type):
    with pytest.raises(ValidationError, match=f"sent as JSON, not {content_type}"):
        encode([[1, 2]], content_type)


@pytest.mark.parametrize("bad, name", [({1, 2}, "set"), (object(), "object"), (Path("x"), "PosixPath"),
                                       (1 + 2j, "complex")])
def test_non_json_serialisable_contents_name_the_type(bad, name):
    with pytest.raises(ValidationError, match=rf"holds a {name} value, which is not JSON-serialisable"):
        encode({"a": [1, bad]})


def test_json_problems_other_than_values():
    with pytest.raises(ValidationError, match="keys must be str"):
        encode({(1, 2): "tuple key"})
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValidationError, match="circular or nested too deeply"):
        encode(circular)


# -- DataFrames and Series ---------------------------------------------------------------------

def test_dataframe_csv_has_no_header_and_no_index_by_default():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[10, 20])
    assert encode(df).body == b"1,x\n2,y\n"
    assert encode(df, csv_header=True).body == b"a,b\n1,x\n2,y\n"


def test_series_is_one_column():
    series = pd.Series([1.5, 2.5], name="score", index=[7, 8])
    assert encode(series).body == b"1.5\n2.5\n"
    assert encode(series, csv_header=True).body == b"score\n1.5\n2.5\n"
    assert encode(series, "application/json").body == b"[[1.5],[2.5]]"


def test_dataframe_json_is_a_list_of_rows_with_exact_floats_and_nulls():
    df = pd.DataFrame({"a": [0.1 + 0.2, np.nan], "b": ["x", None], "t": pd.to_datetime(["2024-01-02", None])})
    assert json.loads(encode(df, "application/json").body) == [
        [0.30000000000000004, "x", "2024-01-02T00:00:00"], [None, None, None]]


# -- serving containers' JSON conventions (SPEC §19) ----------------------------------------------

@pytest.mark.parametrize("json_format, document", [
    ("records", [[1, 0.5, "x"], [2, 0.30000000000000004, "ü"]]),
    ("split", {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 0.5, "x"], [2, 0.30000000000000004, "ü"]]}}),
    ("instances", {"instances": [[1, 0.5, "x"], [2, 0.30000000000000004, "ü"]]}),
    ("inputs", {"inputs": [[1, 0.5, "x"], [2, 0.30000000000000004, "ü"]]}),
])
def test_dataframe_json_formats(json_format, document):
    df = frame().iloc[:2]
    asked = encode(df, "application/json", json_format=json_format)
    assert json.loads(asked.body) == document and asked.content_type == "application/json"
    by_setting = encode(df, "application/json", default_json_format=json_format)
    assert by_setting.body == asked.body


def test_inputs_of_one_column_are_a_flat_list_as_pipelines_take_texts():
    texts = pd.Series(["great film", "dull"], name="review")
    assert encode(texts, "application/json", json_format="inputs").body.decode() == '{"inputs":["great film","dull"]}'
    assert encode(texts, "application/json", json_format="instances").body == b'{"instances":[["great film"],["dull"]]}'


def test_split_keeps_column_labels_and_writes_nan_as_null():
    df = pd.DataFrame({0: [1.5, np.nan], 1: [2, 3]})
    assert json.loads(encode(df, "application/json", json_format="split").body) == {
        "dataframe_split": {"columns": [0, 1], "data": [[1.5, 2], [None, 3]]}}


def test_the_json_format_setting_leaves_other_payloads_and_content_types_alone():
    assert encode({"a": 1}, default_json_format="split").body == b'{"a":1}'
    assert encode(frame(), "text/csv", default_json_format="split").body == encode(frame(), "text/csv").body


@pytest.mark.parametrize("payload, content_type, json_format, message", [
    (frame(), "application/json", "dataframe_split", "json_format must be one of records, split, instances, "
                                                     "inputs, not 'dataframe_split'."),
    (frame(), "application/json", 3, "not 3"),
    (frame(), "text/csv", "split", "json_format='split' lays out DataFrames sent as application/json, not text/csv: "
                                   "pass content_type='application/json'"),
    (frame(), None, "split", "not text/csv"),  # a DataFrame's inferred type is CSV: json_format does not change it
    (frame(), "application/jsonlines", "records", "not application/jsonlines"),
    ({"a": 1}, None, "instances", "a dict payload is sent as it is: leave json_format out."),
    ('{"a": 1}', None, "inputs", "a str payload is sent as it is"),
])
def test_bad_json_formats_are_one_line(payload, content_type, json_format, message):
    with pytest.raises(ValidationError) as caught:
        encode(payload, content_type, json_format=json_format)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.parameter == "json_format"


def test_dataframe_jsonlines_is_one_record_per_line():
    body = encode(pd.DataFrame({"a": [1, 2], "b": ["x", "é"]}), "application/jsonlines").body
    assert body.decode() == '{"a":1,"b":"x"}\n{"a":2,"b":"é"}\n'


def test_dataframe_csv_roundtrip():
    assert values(roundtrip(frame())) == values(frame())
    back = roundtrip(frame(), csv_header=True)
    assert list(back.columns) == ["a", "b", "c"] and values(back) == values(frame())


def test_dataframe_csv_roundtrip_without_header_has_positional_columns():
    assert list(roundtrip(frame()).columns) == [0, 1, 2]


def test_dataframe_json_roundtrip():
    assert values(roundtrip(frame(), "application/json")) == values(frame())


@pytest.mark.parametrize("content_type", JSONL_TYPES)
def test_dataframe_jsonlines_roundtrip(content_type):
    assert_frame_equal(roundtrip(frame(), content_type), frame())


@pytest.mark.parametrize("content_type", PARQUET_TYPES)
def test_dataframe_parquet_roundtrip(content_type):
    df = frame().set_index(pd.Index([5, 6, 7]))
    encoded = encode(df, content_type)
    assert encoded.body[:4] == b"PAR1" and encoded.suffix == ".parquet"
    assert_frame_equal(decode(encoded.body, content_type), frame())  # index not written


def test_parquet_stringifies_non_string_column_names():
    back = roundtrip(pd.DataFrame([[1, 2]]), "application/x-parquet")
    assert list(back.columns) == ["0", "1"] and values(back) == [[1, 2]]


def test_dataframe_npy_roundtrip():
    encoded = encode(numeric_frame(), "application/x-npy")
    assert np.array_equal(np.load(io.BytesIO(encoded.body), allow_pickle=False), numeric_frame().to_numpy())
    assert values(decode(encoded.body, "application/x-npy")) == values(numeric_frame())


def test_dataframe_parquet_write_failure_is_a_validation_error():
    with pytest.raises(ValidationError, match=r"Cannot write a DataFrame as application/x-parquet \(.+\): "
                                              "convert the offending values"):
        encode(pd.DataFrame({"a": [1, "x", b"y"]}), "application/x-parquet")


def test_parquet_without_pyarrow_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ValidationError, match="pyarrow"):
        encode(frame(), "application/x-parquet")
    with pytest.raises(DecodeError, match=r"application/x-parquet output \(.*pyarrow"):
        decode(b"PAR1", "application/x-parquet")


def test_dataframe_with_strings_cannot_be_npy():
    with pytest.raises(ValidationError, match="never uses"):
        encode(frame(), "application/x-npy")


def test_dataframe_unsupported_content_type_lists_the_supported_ones():
    with pytest.raises(ValidationError, match=r"Cannot send a DataFrame as image/png: use one of text/csv, "
                                              r"application/json, application/x-npy, application/jsonlines"):
        encode(frame(), "image/png")


def test_empty_dataframe_is_refused():
    with pytest.raises(ValidationError, match="no rows: SageMaker rejects empty inputs"):
        encode(pd.DataFrame({"a": []}))


# -- numpy arrays ------------------------------------------------------------------------------

@pytest.mark.parametrize("array", [np.arange(6).reshape(2, 3), np.array([0.1, 0.2]), np.array(3.5),
                                   np.zeros((2, 2, 2), dtype=np.float32)])
def test_array_npy_roundtrip_bytes(array):
    encoded = encode(array)
    assert (encoded.content_type, encoded.suffix) == ("application/x-npy", ".npy")
    loaded = np.load(io.BytesIO(encoded.body), allow_pickle=False)
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


def test_array_npy_decodes_to_the_same_values():
    body = encode(np.arange(6).reshape(2, 3)).body
    assert values(decode(body, "application/x-npy")) == [[0, 1, 2], [3, 4, 5]]


def test_array_as_csv_and_json():
    assert encode(np.array([[1, 2], [3, 4]]), "text/csv").body == b"1,2\n3,4\n"
    assert encode(np.array([0.5, 1.5]), "text/csv").body == b"0.5\n1.5\n"
    assert encode(np.array([[1, 2], [3, 4]]), "application/json").body == b"[[1,2],[3,4]]"
    assert encode(np.array([0.5, np.nan]), "application/json").body == b"[0.5,null]"
    assert values(roundtrip(np.array([[1.5, 2.0]]), "text/csv")) == [[1.5, 2.0]]


def test_object_array_is_never_pickled():
    with pytest.raises(ValidationError, match="needs pickle, which sm_async_nb never uses"):
        encode(np.array([{"a": 1}], dtype=object))


def test_3d_array_cannot_be_csv():
    with pytest.raises(ValidationError, match=r"Only 1-D or 2-D numeric arrays .* as text/csv.*\(2, 2, 2\)"):
        encode(np.zeros((2, 2, 2)), "text/csv")


def test_array_with_unsupported_type():
    with pytest.raises(ValidationError, match="Cannot send a numpy array as application/x-parquet"):
        encode(np.zeros(2), "application/x-parquet")


# -- paths: streamed ---------------------------------------------------------------------------

def test_path_is_streamed_with_stat_size_and_streamed_sha(tmp_path, monkeypatch):
    data = b"1,2\n" * 700_000  # several hash chunks
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read whole"))
    encoded = encode(path)
    assert (encoded.content_type, encoded.suffix, encoded.size) == ("text/csv", ".csv", len(data))
    assert encoded.body is None and encoded.path == path
    assert encoded.sha256 == hashlib.sha256(data).hexdigest()
    with encoded.open() as stream:
        assert stream.read() == data


@pytest.mark.parametrize("name, content_type, suffix", [
    ("x.json", "application/json", ".json"), ("x.jsonl", "application/jsonlines", ".jsonl"),
    ("x.ndjson", "application/jsonlines", ".ndjson"), ("x.parquet", "application/x-parquet", ".parquet"),
    ("x.npy", "application/x-npy", ".npy"), ("x.TXT", "text/plain", ".txt"), ("x.wav", "audio/x-wav", ".wav"),
    ("x.weird-ext!", "application/octet-stream", ".bin"), ("noext", "application/octet-stream", ".bin"),
])
def test_path_content_type_and_suffix(tmp_path, name, content_type, suffix):
    (tmp_path / name).write_bytes(b"x")
    encoded = encode(tmp_path / name)
    assert (encoded.content_type, encoded.suffix) == (content_type, suffix)


def test_path_explicit_content_type_is_kept(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"1,2")
    assert encode(tmp_path / "a.bin", "text/csv").content_type == "text/csv"


def test_missing_path(tmp_path):
    with pytest.raises(ValidationError, match=r"nope\.csv does not exist"):
        encode(tmp_path / "nope.csv")


def test_directory_path(tmp_path):
    with pytest.raises(ValidationError, match=rf"{tmp_path.name} is a directory, not a file"):
        encode(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(ValidationError, match=r"e\.csv is empty \(0 bytes\): SageMaker rejects empty inputs"):
        encode(tmp_path / "e.csv")


def test_file_over_1_gb(tmp_path):
    big = tmp_path / "big.bin"
    with big.open("wb") as stream:  # sparse: no real gigabyte written
        stream.truncate(MAX_S3_PAYLOAD + 1)
    with pytest.raises(ValidationError, match=r"big\.bin is 1,000,000,001 bytes, over SageMaker's 1 GB"):
        encode(big)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.csv"
    path.write_bytes(b"x")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)  # chmod 0 would not stop root
    with pytest.raises(ValidationError, match=r"secret\.csv cannot be read \(Permission denied\)"):
        encode(path)


# -- other payload errors ----------------------------------------------------------------------

@pytest.mark.parametrize("payload, name", [({1, 2}, "set"), (object(), "object"), (42, "int"),
                                           (None, "NoneType")])
def test_unsupported_payload_type(payload, name):
    message = rf"Cannot send a {name} payload: use str, bytes, dict/list, a pandas DataFrame/Series"
    with pytest.raises(ValidationError, match=message):
        encode(payload)
    with pytest.raises(ValidationError, match=message):
        infer_content_type(payload)


@pytest.mark.parametrize("payload", ["", b"", bytearray(), memoryview(b"")])
def test_empty_payload(payload):
    with pytest.raises(ValidationError, match=r"empty \(0 bytes\): SageMaker rejects empty inputs"):
        encode(payload)


def test_payload_over_limit(monkeypatch):
    monkeypatch.setattr("sm_async_nb.payloads.encoding.MAX_S3_PAYLOAD", 10)
    assert encode(b"x" * 10).size == 10
    with pytest.raises(ValidationError, match="11 bytes, over SageMaker's 1 GB limit"):
        encode(b"x" * 11)


def test_validation_errors_are_value_errors_naming_the_parameter():
    with pytest.raises(ValueError) as info:
        encode({1, 2})
    assert info.value.parameter == "payload"


# -- decoding: CSV and text ----------------------------------------------------------------------

def test_decode_csv_without_and_with_header():
    assert values(decode(b"1,2\n3,4\n", "text/csv")) == [[1, 2], [3, 4]]
    df = decode(b"a,b\n1,2\n", "text/csv; charset=utf-8", csv_header=True)
    assert list(df.columns) == ["a", "b"] and values(df) == [[1, 2]]


def test_decode_csv_passes_reader_kwargs_and_honours_charset():
    assert values(decode(b"1;2\n", "text/csv", sep=";")) == [[1, 2]]
    assert values(decode("é,1\n".encode("latin-1"), "text/csv; charset=latin-1")) == [["é", 1]]


def test_decode_empty_csv_is_an_empty_frame():
    assert decode(b"", "text/csv").empty and decode(b"\n", "TEXT/CSV").empty


def test_decode_text_plain_one_row_per_line():
    df = decode("first\nsecond é\r\n\nlast".encode(), "text/plain; charset=utf-8")
    assert list(df.columns) == ["text"] and df["text"].tolist() == ["first", "second é", "", "last"]
    assert decode(b"<b>x</b>", "text/html")["text"].tolist() == ["<b>x</b>"]


# -- decoding: JSON shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("body, columns, rows", [
    ([{"label": "a", "score": 0.9}, {"label": "b", "score": 0.1}], ["label", "score"],
     [["a", 0.9], ["b", 0.1]]),
    ([[1, 2], [3, 4]], [0, 1], [[1, 2], [3, 4]]),
    ([0.5, 0.7], ["prediction"], [[0.5], [0.7]]),
    ({"predictions": [0.5, 0.7]}, ["prediction"], [[0.5], [0.7]]),
    ({"outputs": [[1, 2]]}, [0, 1], [[1, 2]]),
    ({"results": [{"a": 1}]}, ["a"], [[1]]),
    ({"embeddings": [[0.1, 0.2], [0.3, 0.4]]}, [0, 1], [[0.1, 0.2], [0.3, 0.4]]),
    ({"label": ["a", "b"], "score": [0.9, 0.1]}, ["label", "score"], [["a", 0.9], ["b", 0.1]]),
    ({"predictions": [1, 2], "scores": [0.5, 0.6]}, ["predictions", "scores"], [[1, 0.5], [2, 0.6]]),
    ({"label": "a", "score": 0.9}, ["label", "score"], [["a", 0.9]]),
    # what serving containers answer (SPEC §19): one row per input row
    ([{"generated_text": "a cat"}, {"generated_text": "a dog"}], ["generated_text"], [["a cat"], ["a dog"]]),
    ({"predictions": [[0.1, 0.9], [0.8, 0.2]]}, [0, 1], [[0.1, 0.9], [0.8, 0.2]]),
    ({"outputs": [0.25, 0.75]}, ["prediction"], [[0.25], [0.75]]),
    (3.5, ["prediction"], [[3.5]]),
    ("cat", ["prediction"], [["cat"]]),
])
def test_decode_json_shapes(body, columns, rows):
    df = decode(json.dumps(body).encode(), "application/json")
    assert list(df.columns) == columns and values(df) == rows


def test_decode_json_known_key_with_metadata_keeps_it_in_attrs():
    df = decode(b'{"predictions": [1, 2], "model_version": "3"}', "application/json")
    assert df["prediction"].tolist() == [1, 2] and df.attrs == {"model_version": "3"}


def test_decode_json_nested_values_become_object_cells():
    df = decode(b'[{"a": {"x": 1}, "b": [1, 2]}, {"a": null}]', "application/json")
    assert df.loc[0, "a"] == {"x": 1} and df.loc[0, "b"] == [1, 2]
    ragged = decode(b'{"a": [1, 2], "b": [1]}', "application/json")
    assert values(ragged) == [[[1, 2], [1]]]
    mixed = decode(b'[1, [2, 3], {"k": 4}]', "application/json")
    assert mixed["prediction"].tolist() == [1, [2, 3], {"k": 4}]
    tokens = decode(b'[[[1, 2], [3, 4]]]', "application/json")
    assert values(tokens) == [[[1, 2], [3, 4]]]


def test_decode_json_empty_shapes():
    assert decode(b"[]", "application/json").empty and decode(b"{}", "application/json").empty
    assert decode(b"", "application/json").empty


def test_decode_json_with_bom_and_vendor_type():
    assert values(decode(b"\xef\xbb\xbf[1]", "application/json")) == [[1]]
    assert values(decode(b'{"predictions": [1]}', "application/vnd.model+json")) == [[1]]


@pytest.mark.parametrize("content_type", JSONL_TYPES)
def test_decode_jsonlines(content_type):
    records = decode(b'{"a": 1, "b": "x"}\n\n{"a": 2, "b": "y"}\n', content_type)
    assert list(records.columns) == ["a", "b"] and values(records) == [[1, "x"], [2, "y"]]
    assert values(decode(b"[1, 2]\n[3, 4]\n", content_type)) == [[1, 2], [3, 4]]
    scalars = decode(b"0.5\n0.25", content_type)
    assert list(scalars.columns) == ["prediction"] and scalars["prediction"].tolist() == [0.5, 0.25]


# -- decoding: Parquet and NPY -----------------------------------------------------------------

def test_decode_parquet_with_reader_kwargs():
    body = frame().to_parquet(index=False)
    assert_frame_equal(decode(body, "application/x-parquet"), frame())
    assert list(decode(body, "application/parquet", columns=["c"]).columns) == ["c"]


def npy(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_decode_npy_shapes():
    zero_d = decode(npy(np.array(7.5)), "application/x-npy")
    assert zero_d.shape == (1, 1) and zero_d.iloc[0, 0] == 7.5
    one_d = decode(npy(np.array([1, 2, 3])), "application/x-npy")
    assert list(one_d.columns) == ["prediction"] and one_d["prediction"].tolist() == [1, 2, 3]
    two_d = decode(npy(np.array([[1.0, 2.0], [3.0, 4.0]])), "application/x-npy")
    assert list(two_d.columns) == [0, 1] and values(two_d) == [[1.0, 2.0], [3.0, 4.0]]
    fortran = decode(npy(np.asfortranarray(np.arange(6).reshape(2, 3))), "application/x-npy")
    assert values(fortran) == [[0, 1, 2], [3, 4, 5]]
    records = decode(npy(np.array([(1, 0.5)], dtype=[("id", "i4"), ("p", "f8")])), "application/x-npy")
    assert list(records.columns) == ["id", "p"] and values(records) == [[1, 0.5]]


def test_decode_npy_format_3_header():
    array = np.array([(1, 2.0)], dtype=[("é€", "i4"), ("b", "f8")])
    with pytest.warns(UserWarning, match="format 3.0"):
        body = npy(array)
    assert body[6:8] == b"\x03\x00"
    df = decode(body, "application/x-npy")
    assert list(df.columns) == ["é€", "b"] and values(df) == [[1, 2.0]]


def test_decode_npy_more_than_2d_points_to_raw():
    with pytest.raises(DecodeError, match=r"shape \(2, 2, 2\).*use \.raw\(\)"):
        decode(npy(np.zeros((2, 2, 2))), "application/x-npy")


class _Trap:
    """Unpickling this creates the marker file: proof that code would have run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_decode_npy_with_pickled_objects_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    body = npy(np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DecodeError, match=r"holds Python objects; sm_async_nb never unpickles.*\.raw\(\)"):
        decode(body, "application/x-npy")
    assert not marker.exists()
    np.load(io.BytesIO(body), allow_pickle=True)  # the trap is real: unpickling does run it
    assert marker.exists()


def test_decode_plain_pickle_labelled_npy_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    body = pickle.dumps(_Trap(marker))
    with pytest.raises(DecodeError, match=r"application/x-npy output \(not an NPY file"):
        decode(body, "application/x-npy")
    assert not marker.exists()


# -- decoding errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("content_type, shown", [(None, "untyped"), ("", "untyped"), ("application/x-weird", "application/x-weird")])
def test_decode_unknown_type_points_to_raw(content_type, shown):
    message = (rf"Cannot turn {shown}.* output into a DataFrame; use \.raw\(\) to get the bytes "
               r"\(or pass accept=\.\.\. to ask the model for CSV/JSON\)")
    with pytest.raises(DecodeError, match=message):
        decode(b"\x89PNG", content_type)


@pytest.mark.parametrize("content_type", ["image/png", "audio/wav", "video/mp4", "application/pdf",
                                          "application/octet-stream", "binary/octet-stream"])
def test_outputs_that_are_not_tables_say_so_and_point_to_raw_and_download(content_type):
    with pytest.raises(DecodeError, match=rf"This output is {content_type}, not a table: use \.raw\(\) .*"
                                          r"batch\.download\(folder\)"):
        decode(b"\x89PNG", content_type)


@pytest.mark.parametrize("body, content_type", [
    (b'{"a": ', "application/json"),
    (b'{"a": 1}\n{oops\n', "application/x-ndjson"),
    (b"PAR1 not really parquet", "application/x-parquet"),
    (b"\x93NUMPY\x01\x00garbage", "application/x-npy"),
    (npy(np.arange(10))[:-8], "application/x-npy"),  # truncated data
    (b"\xff\xfe\xfa", "text/plain"),
    (b"a,b\n1,2\n3,4,5,6\n", "text/csv; charset=utf-8"),
    (b"x", "text/csv; charset=no-such-charset"),
])
def test_decode_corrupt_data_is_a_decode_error(body, content_type):
    with pytest.raises(DecodeError, match=rf"Cannot read this {media_type(content_type)} output \(.+\); "
                                          r"use \.raw\(\)") as info:
        decode(body, content_type)
    assert isinstance(info.value, ValueError)


def test_jsonl_error_names_the_line():
    with pytest.raises(DecodeError, match="line 2"):
        decode(b'{"a": 1}\n{oops\n', "application/jsonlines")


def test_reader_kwargs_only_for_csv_and_parquet():
    with pytest.raises(ValidationError, match="apply only to text/csv and Parquet"):
        decode(b"[1]", "application/json", sep=";")
    with pytest.raises(ValidationError, match=r"reader options \['no_such_option'\] do not fit this text/csv") as caught:
        decode(b"1,2\n", "text/csv", no_such_option=1)
    assert "\n" not in str(caught.value)


def test_encoded_payload_open_gives_fresh_streams():
    encoded = EncodedPayload(content_type="text/csv", size=3, sha256="", suffix=".csv", body=b"1,2")
    first, second = encoded.open(), encoded.open()
    assert first.read() == b"1,2" and second.read() == b"1,2"
