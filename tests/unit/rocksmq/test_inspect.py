"""The inspector and the advice on synthetic RocksMQ databases written in Milvus's key layout."""

from __future__ import annotations

import pytest

from migrator.errors import BadInput
from migrator.rocksmq import advice, inspect
from migrator.rocksmq.layout import msg_id_time
from tests.support.cli import run_cli
from tests.support.rocksmq import START_MS, milvus_topics, tree_snapshot, write_rocksmq


@pytest.fixture(scope="module")
def small_rocksmq(tmp_path_factory):
    path = tmp_path_factory.mktemp("rmq") / "rdb_data"
    topics = milvus_topics(3, [100] * 50 + [3000] * 5 + [70_000] * 10)
    topics["by-dev-replicate-msg"] = []
    written = write_rocksmq(path, topics, page_size=200_000)
    return path, written


def test_deep_inspect_counts_every_message_exactly(small_rocksmq):
    path, written = small_rocksmq
    stats = inspect(path, deep=True)
    assert stats.exact
    by_name = {topic.name: topic for topic in stats.topics}
    assert set(by_name) == set(written)
    for name, truth in written.items():
        assert by_name[name].messages == len(truth.sizes)
        assert by_name[name].bytes == truth.bytes
    dml = by_name["by-dev-rootcoord-dml_1"]
    assert dml.histogram.messages == {"<1KB": 50, "<64KB": 5, "<1MB": 10, "<5MB": 0, ">=5MB": 0}
    assert dml.oldest_msg_id == min(written["by-dev-rootcoord-dml_1"].msg_ids)
    assert dml.oldest_time == msg_id_time(dml.oldest_msg_id)
    assert int(dml.oldest_time.timestamp() * 1000) == START_MS
    assert stats.data_bytes_on_disk > 700_000 * 3 * 0.9 and stats.meta_bytes_on_disk > 0


def test_fast_inspect_reads_bytes_and_pages_from_meta_and_estimates_counts(small_rocksmq):
    path, written = small_rocksmq
    stats = inspect(path)
    assert not stats.exact
    for topic in stats.topics:
        truth = written[topic.name]
        assert topic.bytes == truth.bytes  # closed pages + open page, from the meta DB
        assert topic.closed_pages == truth.pages
        assert topic.messages == len(truth.sizes)  # fewer messages than the sample: exact
    assert stats.messages == sum(len(t.sizes) for t in written.values())


def test_fast_inspect_estimates_large_topics_from_a_sample(tmp_path):
    path = tmp_path / "rdb_data"
    write_rocksmq(path, {"t": [500] * 2000})
    topic = inspect(path).topics[0]
    assert topic.messages == 2000  # uniform sizes: bytes / mean sample size is exact
    assert topic.histogram.messages["<1KB"] == 2000


def test_inspect_writes_nothing_into_either_database(small_rocksmq):
    path, _ = small_rocksmq
    meta = path.with_name("rdb_data_meta_kv")
    before = tree_snapshot(path, meta)
    inspect(path, deep=True)
    assert tree_snapshot(path, meta) == before
    assert not (path / "rocksdict-config.json").exists()


def test_advice_favours_nats_when_most_bytes_are_in_large_messages(small_rocksmq):
    result = advice(inspect(small_rocksmq[0], deep=True))
    assert result.verdict == "nats"
    assert result.share_messages_over_64kb == pytest.approx(10 / 65, abs=1e-3)
    assert result.share_bytes_over_64kb > 0.9
    assert "1.65" in result.paragraph and "2.48" in result.paragraph


def test_advice_favours_rocksmq_for_small_messages_and_says_so_for_an_empty_queue(tmp_path):
    small = tmp_path / "small" / "rdb_data"
    write_rocksmq(small, {"t": [300] * 100})
    result = advice(inspect(small, deep=True))
    assert result.verdict == "rocksmq" and "0.90" in result.paragraph
    empty = tmp_path / "empty" / "rdb_data"
    write_rocksmq(empty, {"t": []})
    assert advice(inspect(empty)).verdict == "no-data"


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda base: base / "missing", "does not exist"),
        (lambda base: (base / "plain").mkdir() or base / "plain", "not a RocksDB directory"),
    ],
)
def test_bad_paths_are_bad_input_naming_the_path(tmp_path, make, fragment):
    path = make(tmp_path)
    result = run_cli(["inspect", "rocksmq", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.stderr and fragment in result.stderr
    assert not path.with_name(path.name + "_meta_kv").exists()


def test_missing_meta_kv_sibling_is_bad_input(tmp_path):
    path = tmp_path / "rdb_data"
    write_rocksmq(path, {"t": [10]})
    meta = tmp_path / "rdb_data_meta_kv"
    meta.rename(tmp_path / "elsewhere")
    result = run_cli(["inspect", "rocksmq", str(path)])
    assert result.exit_code == 2 and "rdb_data_meta_kv does not exist" in result.stderr


def test_corrupt_database_is_bad_input(tmp_path):
    path = tmp_path / "rdb_data"
    write_rocksmq(path, {"t": [10]})
    manifest = next(path.glob("MANIFEST-*"))
    manifest.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(BadInput, match="cannot open RocksDB at .*rdb_data"):
        inspect(path)


def test_cli_json_output_carries_stats_and_advice(small_rocksmq):
    result = run_cli(["--output", "json", "inspect", "rocksmq", str(small_rocksmq[0]), "--deep"])
    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert document["messages"] == 3 * 65 and document["exact"] is True
    assert document["advice"]["verdict"] == "nats"
    text = run_cli(["inspect", "rocksmq", str(small_rocksmq[0])])
    assert "by-dev-rootcoord-dml_0" in text.stdout and "Advice:" in text.stdout
