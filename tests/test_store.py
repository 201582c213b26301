"""The response store: durable appends, lookups across shards, torn-write recovery, damage detection."""

import json
import multiprocessing

import pytest

from harness.store import ResponseStore, StoreError, request_key


def _req(i: int) -> dict:
    return {"endpoint": "completions", "prompt": f"p{i}", "seed": i}


def test_append_then_reopen_finds_every_response(tmp_path):
    store = ResponseStore(tmp_path, "sample")
    for i in range(5):
        store.append(_req(i), {"text": str(i)})
    again = ResponseStore(tmp_path, "vote")
    assert len(again) == 5
    assert again.get(request_key(_req(3)))["response"]["text"] == "3"


def test_key_is_independent_of_dict_order():
    assert request_key({"a": 1, "b": [1, 2]}) == request_key({"b": [1, 2], "a": 1})
    assert request_key({"a": 1}) != request_key({"a": 2})


def test_torn_last_line_is_dropped_with_a_warning_and_cut_before_next_append(tmp_path):
    store = ResponseStore(tmp_path, "sample")
    store.append(_req(1), {"text": "1"})
    with open(store.shard_path, "ab") as fh:
        fh.write(b'{"v": 1, "key": "abc", "requ')  # a crash mid-write
    with pytest.warns(UserWarning, match="incomplete"):
        reopened = ResponseStore(tmp_path, "sample")
    assert len(reopened) == 1
    reopened.append(_req(2), {"text": "2"})
    lines = store.shard_path.read_text().splitlines()
    assert [json.loads(line)["response"]["text"] for line in lines] == ["1", "2"]


def test_garbage_in_the_middle_is_reported_with_file_and_line(tmp_path):
    store = ResponseStore(tmp_path, "sample")
    store.append(_req(1), {"text": "1"})
    with open(store.shard_path, "a") as fh:
        fh.write("not json\n")
    with pytest.raises(StoreError, match=r"sample.jsonl:2: not a JSON record"):
        ResponseStore(tmp_path, "sample")


def test_unknown_schema_version_is_refused(tmp_path):
    (tmp_path / "old.jsonl").write_text(json.dumps({"v": 99, "key": "x", "request": {}}) + "\n")
    with pytest.raises(StoreError, match="unknown store schema"):
        ResponseStore(tmp_path, "sample")


def test_edited_record_whose_key_no_longer_matches_is_refused(tmp_path):
    store = ResponseStore(tmp_path, "sample")
    store.append(_req(1), {"text": "1"})
    record = json.loads(store.shard_path.read_text())
    record["request"]["prompt"] = "something else"
    store.shard_path.write_text(json.dumps(record) + "\n")
    with pytest.raises(StoreError, match="does not match its request"):
        ResponseStore(tmp_path, "sample")


def _writer(root, start):
    store = ResponseStore(root, "sample")
    for i in range(start, start + 200):
        store.append(_req(i), {"text": "x" * 5000})


def test_two_processes_appending_never_interleave_lines(tmp_path):
    procs = [multiprocessing.Process(target=_writer, args=(tmp_path, s)) for s in (0, 1000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert len(ResponseStore(tmp_path, "sample")) == 400
