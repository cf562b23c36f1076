"""The Experiment schema, SET overrides and experiment loading (no TensorFlow involved)."""

import math
import sys

import pytest

from harness.core.errors import UserError
from harness.core.registry import available_experiments, builtin_dir, load_experiment
from harness.core.schema import Experiment, apply_overrides

EXPERIMENTS_DIR = builtin_dir()


@pytest.fixture
def catch():
    return load_experiment("catch_dense")


def test_catch_dense_is_the_articles_network(catch):
    assert catch.name == "catch_dense"
    assert catch.env_id == "Catch-v0" and catch.env_kwargs["size"] == 8
    assert catch.network == "dense" and catch.network_kwargs == {"hidden": [32]}
    assert catch.enable_double_dqn and catch.delta_clip == 1.0 and catch.target_model_update >= 1


def test_overrides_are_typed(catch):
    exp = apply_overrides(
        catch,
        [
            "gamma=0.5",
            "train_interval=4",
            "enable_double_dqn=false",
            "learning_rate=none",
            'env_kwargs={"size": 16}',
            "nb_steps=1e5",
            "delta_clip=inf",
        ],
    )
    assert exp.gamma == 0.5 and exp.train_interval == 4 and exp.enable_double_dqn is False
    assert exp.learning_rate is None and exp.env_kwargs == {"size": 16} and exp.nb_steps == 100_000
    assert math.isinf(exp.delta_clip)
    assert catch.gamma != 0.5, "overrides return a new experiment"


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("gama=0.9", "unknown key 'gama' (did you mean gamma?); valid keys: "),
        ("gamma=abc", "SET gamma='abc': expected float"),
        ("train_interval=2.5", "SET train_interval='2.5': expected int"),
        ("enable_double_dqn=maybe", "SET enable_double_dqn='maybe': expected bool"),
        ("env_kwargs=[1]", "SET env_kwargs='[1]': expected dict"),
        ("env_kwargs={size:16}", "expected a JSON dict"),
        ("gamma", "expected key=value"),
        ("callbacks=[]", "unknown key 'callbacks'"),
    ],
)
def test_bad_overrides_name_the_field(catch, assignment, message):
    with pytest.raises(UserError) as err:
        apply_overrides(catch, [assignment])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_key_lists_valid_keys(catch):
    with pytest.raises(UserError) as err:
        apply_overrides(catch, ["nope=1"])
    for key in ("gamma", "batch_size", "nb_steps", "target_model_update"):
        assert key in str(err.value)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": -0.1}, "gamma"),
        ({"memory_limit": -5}, "memory_limit"),
        ({"batch_size": 64, "memory_limit": 32}, "batch_size=64 is larger than memory_limit=32"),
        ({"nb_steps": 0}, "nb_steps"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"eps_min": 2.0}, "eps_min"),
        ({"env_id": ""}, "env_id"),
    ],
)
def test_out_of_range_values_are_refused(catch, changes, field):
    import dataclasses

    with pytest.raises(UserError, match=field):
        dataclasses.replace(catch, **changes).validate()


def test_unknown_name_suggests_and_lists():
    with pytest.raises(UserError) as err:
        load_experiment("catch_dens")
    text = str(err.value)
    assert "did you mean catch_dense?" in text and "available:" in text and "catch_dense" in text


@pytest.mark.parametrize("name", ["../x", "a/b", "experiments.catch_dense", "os.path", "", " "])
def test_names_never_leave_experiments(name):
    with pytest.raises(UserError):
        load_experiment(name)


@pytest.fixture
def broken_module():
    path = EXPERIMENTS_DIR / "zz_broken_for_test.py"
    written = []

    def write(text):
        path.write_text(text)
        written.append(path)
        sys.modules.pop(f"experiments.{path.stem}", None)
        return path.stem

    yield write
    for p in written:
        p.unlink(missing_ok=True)
        sys.modules.pop(f"experiments.{p.stem}", None)


def test_module_with_a_mistake_is_a_user_error(broken_module):
    name = broken_module("from harness import Experiment\nEXPERIMENT = Experiment(gama=0.9)\n")
    with pytest.raises(UserError, match=r"experiments/zz_broken_for_test.py failed to load: TypeError"):
        load_experiment(name)


def test_module_without_experiment_is_a_user_error(broken_module):
    name = broken_module("X = 1\n")
    with pytest.raises(UserError, match="must define EXPERIMENT"):
        load_experiment(name)


def test_module_with_wrong_type_is_a_user_error(broken_module):
    name = broken_module(
        "from harness import Experiment\nEXPERIMENT = Experiment(env_id='Catch-v0', nb_steps='many')\n"
    )
    with pytest.raises(UserError, match="nb_steps='many' has the wrong type; expected int"):
        load_experiment(name)


def test_config_round_trip(catch):
    assert Experiment.from_dict(catch.to_dict()) == catch


def test_every_experiment_loads():
    names = available_experiments()
    assert "catch_dense" in names
    for name in names:
        assert load_experiment(name).name == name
