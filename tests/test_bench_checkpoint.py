"""The checkpoint benchmark (`make bench-checkpoint`) writes what training writes: a cave_conv
checkpoint with its memory of 48x48 uint8 frames, and a small one without it. Its figures for the
full 100,000-transition memory are a benchmark result, not asserted here."""

from bench import checkpoint as bench_checkpoint


def test_measure_writes_and_loads_a_cave_conv_checkpoint(tmp_path):
    result = bench_checkpoint.measure(transitions=300, repeats=1, base=tmp_path)
    assert result["entries"] == 300
    full, small = result["with_memory"], result["without_memory"]
    assert set(full["files_mb"]) == {"weights.h5", "state.npz", "state.json", "complete.json"}
    # The frames alone: 300 x 48 x 48 bytes, stored as uint8.
    assert full["files_mb"]["state.npz"] - small["files_mb"]["state.npz"] >= 300 * 48 * 48 / 1e6
    assert full["write_seconds_median"] > 0 and small["load_seconds"] > 0
    assert list(tmp_path.iterdir()) == []
