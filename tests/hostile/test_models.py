"""Hostile model files and bad arguments to `load_model`: one TfgreenError, never code run."""

import json
import zipfile

import pytest

import tfgreen
from tfgreen.errors import TfgreenError, TfgreenTypeError, UntrustedModelError


@pytest.fixture(scope="session")
def keras_file(tmp_path_factory):
    import keras

    path = tmp_path_factory.mktemp("models") / "small.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(path)
    return path


def _rewrite(source, target, config: str):
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = config.encode() if item.filename == "config.json" else old.read(item)
            new.writestr(item.filename, data)
    return target


def test_load_model_of_a_number_is_a_type_error():
    with pytest.raises(TfgreenTypeError, match="takes a path"):
        tfgreen.load_model(123)


def test_config_naming_os_system_is_refused_without_running(tmp_path, keras_file):
    config = json.loads(zipfile.ZipFile(keras_file).read("config.json"))
    config["config"]["layers"][1]["module"] = "os"
    config["config"]["layers"][1]["class_name"] = "system"
    marker = tmp_path / "ran"
    config["config"]["layers"][1]["config"] = {"command": f"touch {marker}"}
    path = _rewrite(keras_file, tmp_path / "os.keras", json.dumps(config))
    with pytest.raises(TfgreenError, match="could not rebuild|Refusing"):
        tfgreen.load_model(path)
    assert not marker.exists()


def test_huge_config_is_refused_before_parsing(tmp_path, keras_file):
    path = _rewrite(keras_file, tmp_path / "huge.keras", " " * (65 * 2**20))
    with pytest.raises(TfgreenError, match="config.json is too large"):
        tfgreen.load_model(path)


def test_unknown_class_with_trusted_is_not_told_to_pass_trusted(tmp_path, keras_file):
    config = json.loads(zipfile.ZipFile(keras_file).read("config.json"))
    config["config"]["layers"][1]["class_name"] = "UnsafeDense"
    path = _rewrite(keras_file, tmp_path / "unknown.keras", json.dumps(config))
    with pytest.raises(TfgreenError, match="could not rebuild") as caught:
        tfgreen.load_model(path, trusted=True)
    assert not isinstance(caught.value, UntrustedModelError)


def test_cli_malformed_keras_is_one_line_exit_2(tmp_path, keras_file, capsys):
    from tfgreen.cli import main

    path = _rewrite(keras_file, tmp_path / "bad.keras", "{not json")
    code = main(["export", str(path), "-o", str(tmp_path / "m.tflite")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
