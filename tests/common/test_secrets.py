"""read_secret / env_value: empty means unset, both forms set is an error, errors never hold the content."""

from __future__ import annotations

import os

import pytest

from common.errors import ConfigError
from common.secrets import env_value, read_secret


def test_value_from_the_variable_or_the_file(tmp_path):
    path = tmp_path / "token"
    path.write_text("  s3cret-from-file\n")
    assert read_secret({"TOKEN": "s3cret"}, "TOKEN") == "s3cret"
    assert read_secret({"TOKEN_FILE": str(path)}, "TOKEN") == "s3cret-from-file"
    assert read_secret({}, "TOKEN") is None


@pytest.mark.parametrize("content", ["", "   ", "\n\n"])
def test_empty_variable_or_empty_file_means_unset(tmp_path, content):
    path = tmp_path / "token"
    path.write_text(content)
    assert read_secret({"TOKEN": ""}, "TOKEN") is None
    assert read_secret({"TOKEN_FILE": str(path)}, "TOKEN") is None
    # Compose passes both as empty strings when neither is set in .env.
    assert read_secret({"TOKEN": "", "TOKEN_FILE": ""}, "TOKEN") is None
    # An empty variable beside a file is not "both set".
    assert read_secret({"TOKEN": "", "TOKEN_FILE": str(path)}, "TOKEN") is None


def test_both_set_is_an_error(tmp_path):
    path = tmp_path / "token"
    path.write_text("from-file")
    with pytest.raises(ConfigError) as err:
        read_secret({"TOKEN": "inline-secret", "TOKEN_FILE": str(path)}, "TOKEN")
    assert str(err.value) == "TOKEN and TOKEN_FILE are both set: set only one"


def test_unreadable_file_names_variable_and_path_never_content(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(ConfigError) as err:
        read_secret({"TOKEN_FILE": str(missing)}, "TOKEN")
    assert str(err.value).startswith(f"TOKEN_FILE: cannot read {missing}:")

    directory = tmp_path / "dir"
    directory.mkdir()
    with pytest.raises(ConfigError) as err:
        read_secret({"TOKEN_FILE": str(directory)}, "TOKEN")
    assert "TOKEN_FILE" in str(err.value) and str(directory) in str(err.value)

    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe-secret-bytes")
    with pytest.raises(ConfigError) as err:
        read_secret({"TOKEN_FILE": str(binary)}, "TOKEN")
    assert str(binary) in str(err.value) and "secret-bytes" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_permissions(tmp_path):
    path = tmp_path / "token"
    path.write_text("hidden-secret")
    path.chmod(0)
    with pytest.raises(ConfigError) as err:
        read_secret({"TOKEN_FILE": str(path)}, "TOKEN")
    assert str(path) in str(err.value) and "hidden-secret" not in str(err.value)


def test_env_value_empty_means_unset():
    assert env_value({"X": ""}, "X") is None
    assert env_value({}, "X") is None
    assert env_value({"X": " 5 "}, "X") == " 5 "
