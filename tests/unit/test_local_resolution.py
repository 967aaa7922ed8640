"""How the local stack resolves a SageMaker model (SPEC §17): model.tar.gz with code/inference.py,
SAGEMAKER_PROGRAM, SAGEMAKER_SUBMIT_DIRECTORY, image_map, the stack's own pointers — and every
archive that would write outside the model directory refused, leaving nothing behind."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import pytest

from sm_async_nb.local.service.hosting import ContainerModel, HandlerModel
from sm_async_nb.local.service.resolution import ModelSource, Resolver, Unresolvable

HANDLER = '''
import json, os
def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return {"dir": model_dir, **json.load(f)}
def predict_fn(data, model):
    return {"scale": model["scale"], "dir": model["dir"]}
def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
'''


def tar_gz(members: dict[str, bytes | str], links: dict[str, str] | None = None) -> bytes:
    """A tar.gz archive of ``members`` (name -> content) and symlinks (name -> target)."""
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w:gz") as archive:
        for name, content in members.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return stream.getvalue()


@pytest.fixture
def store():
    return {}


@pytest.fixture
def resolver(tmp_path, store):
    work = tmp_path / "work"
    work.mkdir()

    def read(uri: str) -> bytes:
        if uri not in store:
            raise LookupError(f"NoSuchKey: {uri}")
        return store[uri]

    return Resolver(read, (("registry/mapped:1", "http://127.0.0.1:9001"), ("registry/prefix", "http://127.0.0.1:9002")),
                    work, clock=lambda: 0.0)


def source(**kwargs) -> ModelSource:
    return ModelSource(name=kwargs.pop("name", "m1"), image=kwargs.pop("image", "registry/framework:1"), **kwargs)


def test_model_tar_gz_with_code_inference_py_gets_the_model_dir(resolver, store):
    store["s3://b/model.tar.gz"] = tar_gz({"weights.json": '{"scale": 3}', "code/inference.py": HANDLER})
    resolved = resolver.resolve(source(model_data_url="s3://b/model.tar.gz"), startup=1)
    assert isinstance(resolved.adapter, HandlerModel)
    resolved.adapter.load()
    body, content_type = resolved.adapter.invoke(b"[1]", "application/json", None)
    assert content_type == "application/json" and b'"scale": 3' in body
    assert str(resolved.model_dir) in body.decode()  # model_fn got the extracted model directory
    resolved.discard()
    assert not resolved.model_dir.exists()


def test_sagemaker_program_and_a_submit_directory_in_s3(resolver, store):
    store["s3://b/model.tar.gz"] = tar_gz({"weights.json": '{"scale": 5}'})
    store["s3://b/sourcedir.tar.gz"] = tar_gz({"serve.py": HANDLER})
    resolved = resolver.resolve(source(model_data_url="s3://b/model.tar.gz", environment={
        "SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/sourcedir.tar.gz"}), startup=1)
    resolved.adapter.load()
    assert b'"scale": 5' in resolved.adapter.invoke(b"[1]", "application/json", None)[0]
    assert resolved.adapter.path == resolved.model_dir / "code" / "serve.py"


def test_image_map_exact_name_then_longest_prefix(resolver):
    exact = resolver.resolve(source(image="registry/mapped:1"), startup=1).adapter
    prefixed = resolver.resolve(source(image="registry/prefix-model:7"), startup=1).adapter
    assert isinstance(exact, ContainerModel) and exact.url == "http://127.0.0.1:9001"
    assert isinstance(prefixed, ContainerModel) and prefixed.url == "http://127.0.0.1:9002"
    resolver.map_images((("registry/prefix-model", "http://127.0.0.1:9003"),))
    assert resolver.resolve(source(image="registry/prefix-model:7"), startup=1).adapter.url == "http://127.0.0.1:9003"


def test_a_pointer_to_a_python_object_is_shared(resolver):
    def model(body, content_type):
        return b"ok"

    pointer = resolver.pointer(model)
    assert pointer == resolver.pointer(model) and pointer.startswith("python-object:")
    first = resolver.resolve(source(environment={"SM_ASYNC_NB_LOCAL_MODEL": pointer}), startup=1).adapter
    again = resolver.resolve(source(name="m2", environment={"SM_ASYNC_NB_LOCAL_MODEL": pointer}), startup=1).adapter
    assert first is again and first.invoke(b"x", "text/plain", None)[0] == b"ok"


@pytest.mark.parametrize("setup, expected", [
    (lambda store: None, "is not mapped to a local serving container and it has no ModelDataUrl"),
    (lambda store: store.update({"s3://b/model.tar.gz": b"PK\x03\x04 a zip, not a tarball"}),
     "is not a tar.gz archive"),
    (lambda store: store.update({"s3://b/model.tar.gz": tar_gz({"model.pth": b"\x00"})}), "has no code/inference.py"),
    (lambda store: None, "cannot be read"),
])
def test_unresolvable_models_are_one_line_saying_what_to_do(resolver, store, tmp_path, setup, expected):
    setup(store)
    url = None if "mapped" in expected else "s3://b/model.tar.gz"
    with pytest.raises(Unresolvable, match=expected) as caught:
        resolver.resolve(source(model_data_url=url), startup=1)
    assert "\n" not in str(caught.value)
    assert list((tmp_path / "work").iterdir()) == []  # no model directory left behind


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink-out", "absolute-symlink"])
def test_archives_escaping_the_model_dir_are_refused(resolver, store, tmp_path, kind):
    escape = tmp_path / f"escaped-{uuid.uuid4().hex}.txt"
    members = {"code/inference.py": HANDLER, "weights.json": "{}"}
    links = {}
    if kind == "dotdot":
        members["../../" + escape.name] = "owned"
    elif kind == "absolute":
        members[str(escape)] = "owned"
    elif kind == "symlink-out":
        links["code/evil"] = "../../../" + escape.name
    else:
        links["evil"] = str(escape)
    store["s3://b/model.tar.gz"] = tar_gz(members, links)
    with pytest.raises(Unresolvable, match="refused, member .* would land outside the model directory"):
        resolver.resolve(source(model_data_url="s3://b/model.tar.gz"), startup=1)
    assert not escape.exists()
    assert list((tmp_path / "work").iterdir()) == []
    assert not (tmp_path / escape.name).exists() and not Path("/" + escape.name).exists()


def test_a_program_outside_code_is_refused(resolver, store):
    store["s3://b/model.tar.gz"] = tar_gz({"code/inference.py": HANDLER, "x.py": HANDLER})
    with pytest.raises(Unresolvable, match="must name a file inside code/"):
        resolver.resolve(source(model_data_url="s3://b/model.tar.gz", environment={"SAGEMAKER_PROGRAM": "../x.py"}),
                         startup=1)
