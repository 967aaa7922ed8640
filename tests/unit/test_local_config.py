"""StackConfig: every option of the local stack defined once, and the command lines generated from it."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from sm_async_nb.local.config import StackConfig, flag, from_arguments, given


def option_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """dest -> flag of every optional argument."""
    return {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}


def local_parsers() -> dict[str, argparse.ArgumentParser]:
    from sm_async_nb.cli import build_parser
    from sm_async_nb.notebook.commands import SM_ASYNC_PARSER

    def sub(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
        [choices] = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return choices[name]

    return {"sm-async-nb local": sub(build_parser(), "local"), "%sm_async local": sub(SM_ASYNC_PARSER, "local")}


@pytest.mark.parametrize("surface", ["sm-async-nb local", "%sm_async local"])
def test_every_config_field_has_a_flag_on_every_command_line(surface):
    flags = option_flags(local_parsers()[surface])
    missing = [f.name for f in dataclasses.fields(StackConfig) if flags.get(f.name) != flag(f.name)]
    assert missing == [], f"{surface} has no flag for {missing}"


@pytest.mark.parametrize("surface", ["sm-async-nb local", "%sm_async local"])
def test_flags_not_given_leave_the_defaults_and_given_ones_are_parsed(surface):
    parser = local_parsers()[surface]
    assert from_arguments(parser.parse_args(["start"])) == StackConfig()
    args = parser.parse_args(["start", "--endpoint", "ep-1", "--concurrency", "3", "--sns", "--scale-out-seconds",
                              "none", "--idle-timeout", "30m", "--latency-ms", "20", "--seed", "7"])
    assert given(args) == {"endpoint_name": "ep-1", "concurrency": 3, "sns": True, "scale_out_seconds": None,
                           "idle_timeout": 1800.0, "latency_ms": 20.0, "seed": 7}
    assert from_arguments(args).changed() == given(args)


@pytest.mark.parametrize("options, named", [
    ({"endpoint_name": "bad_name"}, "EndpointName"), ({"concurrency": 0}, "concurrency"),
    ({"fault_rate": 1.5}, "fault_rate"), ({"latency_ms": -1}, "latency_ms"), ({"time_scale": 0}, "time_scale"),
    ({"delay": -1}, "delay"), ({"instance_count": 0}, "instance_count"),
    ({"min_instances": 2, "max_instances": 1}, "min_instances"), ({"scale_in_idle_seconds": -2}, "scale_in_idle"),
    ({"metrics_period_seconds": 0}, "metrics_period_seconds"), ({"idle_timeout": 0}, "idle_timeout"),
    ({"runtime_port": -1}, "runtime_port"), ({"host": "0.0.0.0"}, "loopback"), ({"host": "example.org"}, "IP"),
    ({"create_seconds": -1}, "create_seconds"), ({"image_map": {"img": "ftp://x"}}, "image_map"),
    ({"image_map": {"": "http://127.0.0.1:1"}}, "image_map"), ({"image_map": "img=http://x"}, "image_map"),
])
def test_bad_options_are_one_line_errors_naming_the_option(options, named):
    with pytest.raises(ValueError, match=named) as caught:
        StackConfig(**options)
    assert "\n" not in str(caught.value)


def test_a_bad_flag_value_is_a_one_line_error_of_the_cli(capsys):
    from sm_async_nb import cli

    assert cli.main(["local", "start", "--concurrency", "0"]) == 2
    err = capsys.readouterr().err
    assert "concurrency must be at least 1" in err and err.count("\n") == 1


def test_the_magic_refuses_a_bad_option_before_starting_anything(tmp_path):
    import sm_async_nb as sma
    from sm_async_nb.notebook.commands import SM_ASYNC_PARSER
    from sm_async_nb.notebook.magics import SageMakerAsyncMagics

    args = SM_ASYNC_PARSER.parse_args(["local", "start", "--fault-rate", "2"])

    class NoSession:
        def start_local(self, *args, **kwargs):
            raise AssertionError("nothing may start")

    magics = SageMakerAsyncMagics.__new__(SageMakerAsyncMagics)
    magics.session = NoSession()
    with pytest.raises(sma.ValidationError, match="fault_rate must be between 0 and 1"):
        magics._cmd_local(args)


def test_stack_wide_differences_are_the_options_set_here():
    running = StackConfig(time_scale=60, latency_ms=5).shared()
    assert StackConfig(time_scale=60).differs(running) == []
    assert StackConfig(time_scale=1.5, fault_rate=0.2, idle_timeout=60).differs(running) == ["fault_rate",
                                                                                            "time_scale"]
    assert StackConfig(delay=3).differs(running) == []  # an endpoint option, not the stack's


def test_a_python_model_cannot_go_to_another_process_as_json():
    with pytest.raises(ValueError, match="file path or a container URL"):
        StackConfig(model=lambda body, content_type: body).to_json()
    assert StackConfig.from_json(StackConfig(model="m.py", concurrency=3).to_json()) == StackConfig(
        model="m.py", concurrency=3)


def test_the_moto_range_is_the_local_extras():
    """The range named in the stack's error messages is the one pyproject.toml installs."""
    from pathlib import Path

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    from sm_async_nb.local.settings import MOTO_REQUIREMENT

    extra = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert MOTO_REQUIREMENT in extra["project"]["optional-dependencies"]["local"]


@pytest.mark.parametrize("surface", ["sm-async-nb local", "%sm_async local"])
def test_image_map_is_a_repeatable_flag_and_create_seconds_a_number(surface, capsys):
    parser = local_parsers()[surface]
    args = parser.parse_args(["start", "--image-map", "my/image:1=http://127.0.0.1:8080", "--image-map",
                              "other/=http://127.0.0.1:9090/", "--create-seconds", "2.5"])
    config = from_arguments(args)
    assert config.image_map == (("my/image:1", "http://127.0.0.1:8080"), ("other/", "http://127.0.0.1:9090/"))
    assert config.create_seconds == 2.5
    assert StackConfig.from_json(config.to_json()) == config  # to a child or detached process and back
    with pytest.raises((SystemExit, Exception)) as caught:  # argparse exits; the magic's parser raises
        parser.parse_args(["start", "--image-map", "no-equals-sign"])
    assert "--image-map takes IMAGE=URL" in str(caught.value) + capsys.readouterr().err


def test_image_map_from_python_is_a_dict_and_reattaching_does_not_call_it_a_difference():
    config = StackConfig(image_map={"b": "http://127.0.0.1:2", "a": "https://example.org/serve"})
    assert config.image_map == (("a", "https://example.org/serve"), ("b", "http://127.0.0.1:2"))
    assert StackConfig(image_map={"c": "http://127.0.0.1:3"}).differs(config.shared()) == []  # added, not refused
