"""Tests of the simulator's hardware and model profiles (reviewed YAML data) and their resolution."""

from __future__ import annotations

import pytest
import yaml

from collector.errors import ConfigError
from collector.sim.profiles import PROFILES_DIR, known_instance_types, known_models, resolve_hardware

REQUIRED_INSTANCES = [
    *(
        f"g5.{size}"
        for size in ["xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"]
    ),
    "g6.xlarge",
    "g6e.xlarge",
    "p4d.24xlarge",
    "p5.48xlarge",
    "p5e.48xlarge",
]


def test_every_known_instance_type_resolves_with_a_small_model():
    for instance_type in known_instance_types():
        profile = resolve_hardware(instance_type, "llama-3.1-8b")
        assert profile.tensor_parallel == profile.gpu_count >= 1
        assert profile.memory_bytes == pytest.approx(profile.gpu.memory_gb * 1e9 * profile.gpu_count)


def test_required_instance_types_and_models_are_present():
    assert set(REQUIRED_INSTANCES) <= set(known_instance_types())
    assert {"llama-3.1-8b", "llama-3.1-70b"} <= set(known_models())


@pytest.mark.parametrize(
    ("instance_type", "gpu", "count"),
    [
        ("g5.4xlarge", "A10G", 1),
        ("g5.12xlarge", "A10G", 4),
        ("g5.48xlarge", "A10G", 8),
        ("g6.xlarge", "L4", 1),
        ("g6e.12xlarge", "L40S", 4),
        ("p4d.24xlarge", "A100-40GB", 8),
        ("p5.48xlarge", "H100-80GB", 8),
        ("p5e.48xlarge", "H200", 8),
        ("ml.g5.4xlarge", "A10G", 1),  # SageMaker spelling of the same hardware
    ],
)
def test_instance_types_map_to_their_gpus(instance_type, gpu, count):
    profile = resolve_hardware(instance_type, "llama-3.1-8b")
    assert (profile.gpu_name, profile.gpu_count) == (gpu, count)


def test_gpu_datasheet_figures_are_the_published_ones():
    a10g = resolve_hardware("g5.4xlarge", "llama-3.1-8b")
    assert (a10g.gpu.memory_gb, a10g.gpu.bf16_dense_tflops, a10g.gpu.memory_bandwidth_gb_per_s) == (24, 125, 600)
    assert "A10" in a10g.gpu.source
    assert "AWS" in (a10g.gpu.note or "")
    h100 = resolve_hardware("p5.48xlarge", "llama-3.1-8b", tensor_parallel=1)
    assert (h100.gpu.memory_gb, h100.gpu.bf16_dense_tflops, h100.gpu.memory_bandwidth_gb_per_s) == (80, 989, 3350)


def test_model_architecture_values_come_from_config_json():
    m8 = resolve_hardware("g5.4xlarge", "llama-3.1-8b").model
    assert (m8.model_id, m8.parameters, m8.num_layers, m8.num_kv_heads, m8.head_dim) == (
        "meta-llama/Llama-3.1-8B-Instruct",
        8.03e9,
        32,
        8,
        128,
    )
    assert m8.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2
    m70 = resolve_hardware("p5.48xlarge", "llama-3.1-70b").model
    assert (m70.parameters, m70.num_layers, m70.num_kv_heads, m70.head_dim) == (70.6e9, 80, 8, 128)


def test_model_can_be_named_by_hugging_face_id():
    assert resolve_hardware("g5.4xlarge", "meta-llama/Llama-3.1-8B-Instruct").model_key == "llama-3.1-8b"


def test_tensor_parallel_aggregates_compute_bandwidth_and_memory():
    one = resolve_hardware("g5.48xlarge", "llama-3.1-8b", tensor_parallel=1)
    eight = resolve_hardware("g5.48xlarge", "llama-3.1-8b")
    assert eight.tensor_parallel == 8
    assert eight.peak_flops == pytest.approx(8 * one.peak_flops)
    assert eight.memory_bandwidth_bytes_per_s == pytest.approx(8 * one.memory_bandwidth_bytes_per_s)
    assert eight.memory_bytes == pytest.approx(192e9)


def test_unknown_instance_type_names_it_and_suggests_known_ones():
    with pytest.raises(ConfigError) as err:
        resolve_hardware("g5.5xlarge", "llama-3.1-8b")
    # The three nearest names by spelling, closest first (difflib ratio 0.95 for g5.xlarge, then 0.9 for
    # g5.8xlarge, g5.4xlarge and g5.2xlarge, ties taken in reverse order of the name), not the first six of the
    # catalogue, which a name without a close match gets (and which would list g5.4xlarge too).
    assert str(err.value) == "unknown instance type 'g5.5xlarge'; did you mean: g5.xlarge, g5.8xlarge, g5.4xlarge"


def test_unknown_instance_type_without_close_match_lists_examples():
    with pytest.raises(ConfigError, match=r"unknown instance type 'm7i.large'; known ones include: g5.xlarge"):
        resolve_hardware("m7i.large", "llama-3.1-8b")


def test_unknown_model_names_it():
    with pytest.raises(ConfigError, match=r"unknown model 'llama-9-400b'"):
        resolve_hardware("g5.4xlarge", "llama-9-400b")


def test_model_that_does_not_fit_states_sizes():
    with pytest.raises(ConfigError) as err:
        resolve_hardware("g5.4xlarge", "llama-3.1-70b")
    assert str(err.value) == "model llama-3.1-70b needs 141 GB of weights; g5.4xlarge has 1 x A10G with 24 GB"


def test_70b_fits_once_enough_gpus_share_it():
    assert resolve_hardware("g5.48xlarge", "llama-3.1-70b").tensor_parallel == 8
    with pytest.raises(ConfigError, match=r"needs 141 GB of weights; g5.48xlarge with tensor_parallel 4 gives"):
        resolve_hardware("g5.48xlarge", "llama-3.1-70b", tensor_parallel=4)


def test_impossible_tensor_parallel_degree_is_rejected():
    with pytest.raises(ConfigError, match=r"tensor_parallel 2 is not possible on g5.4xlarge"):
        resolve_hardware("g5.4xlarge", "llama-3.1-8b", tensor_parallel=2)


def test_every_data_entry_has_a_source_and_gpu_figures_are_in_the_documented_units():
    for name, section in [("gpus.yml", "gpus"), ("instances.yml", "instances"), ("models.yml", "models")]:
        entries = yaml.safe_load((PROFILES_DIR / name).read_text(encoding="utf-8"))[section]
        assert entries
        assert all(entry.get("source") for entry in entries.values()), name
    gpus = yaml.safe_load((PROFILES_DIR / "gpus.yml").read_text(encoding="utf-8"))["gpus"]
    # The A10G (g5, the reference instance) as NVIDIA's A10 datasheet prints it: 24 GB, 125 dense BF16 TFLOP/s,
    # 600 GB/s.
    a10g = gpus["A10G"]
    assert (a10g["memory_gb"], a10g["bf16_dense_tflops"], a10g["memory_bandwidth_gb_per_s"]) == (24, 125, 600)
    for gpu, spec in gpus.items():
        # Dense BF16 FLOP per byte of bandwidth is 200-420 on every data-centre GPU listed: a sparsity figure
        # (x2), TB/s for GB/s (x1000) or GiB for GB would fall outside it.
        ridge = spec["bf16_dense_tflops"] * 1e12 / (spec["memory_bandwidth_gb_per_s"] * 1e9)
        assert 150 < ridge < 500, (gpu, ridge)
        assert 16 <= spec["memory_gb"] <= 200, gpu
    defaults = yaml.safe_load((PROFILES_DIR / "gpus.yml").read_text(encoding="utf-8"))["defaults"]
    assert "FMBench" in defaults["source"]
