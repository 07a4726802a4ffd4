import multiprocessing
import os

from gbench.results import store


def _writer(out, prefix, count):
    for index in range(count):
        store.upsert_result(out, {"run_id": f"{prefix}-{index}", "status": "ok", "fid": index, f"only_{prefix}": 1})


def test_two_concurrent_writers_lose_no_row(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(tmp_path, prefix, 40)) for prefix in ("a", "b")]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    rows = store.read_results(tmp_path)
    assert sorted(row["run_id"] for row in rows) == sorted(f"{p}-{i}" for p in "ab" for i in range(40))
    assert {"only_a", "only_b"} <= set(rows[0])  # columns are the union over rows
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert leftovers == []


def test_upsert_replaces_the_row_of_the_same_run(tmp_path):
    store.upsert_result(tmp_path, {"run_id": "r", "fid": 10})
    store.upsert_result(tmp_path, {"run_id": "r", "fid": 5})
    rows = store.read_results(tmp_path)
    assert [(row["run_id"], row["fid"]) for row in rows] == [("r", "5")]


def test_failed_write_leaves_old_file_intact(tmp_path):
    path = tmp_path / "summary.json"
    store.write_json(path, {"a": 1})

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    try:
        store.atomic_write_text(path, None)  # type error mid-write
    except Exception:
        pass
    assert store.read_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_nan_is_written_as_null(tmp_path):
    store.write_json(tmp_path / "s.json", {"fid": float("nan"), "x": [float("inf")]})
    assert store.read_json(tmp_path / "s.json") == {"fid": None, "x": [None]}


def test_written_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "r.json"
    store.write_json(path, {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
