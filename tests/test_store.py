import csv
import io
import multiprocessing
import os
import signal
import subprocess
import sys

import pytest

from gbench.errors import GbenchError
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


# --- results.csv: appended rows keep every guarantee of the rewritten table ----------

ROW = {"run_id": "", "status": "ok", "fid": 1.5, "notes": ""}


def _rows(out):
    return [(row["run_id"], row["fid"]) for row in store.read_results(out)]


def test_a_new_run_is_appended_in_place_and_the_table_before_it_is_untouched(tmp_path):
    store.upsert_result(tmp_path, {**ROW, "run_id": "a"})
    path = tmp_path / store.RESULTS
    before, inode = path.read_bytes(), path.stat().st_ino
    store.upsert_result(tmp_path, {**ROW, "run_id": "b", "fid": 2})
    store.ensure_result(tmp_path, {**ROW, "run_id": "c", "fid": None})
    after = path.read_bytes()
    assert path.stat().st_ino == inode and after.startswith(before)  # appended, not renamed over
    assert after[len(before) :] == b"b,ok,2,\nc,ok,,\n"
    assert list(csv.DictReader(io.StringIO(after.decode()), strict=True)) == store.read_results(tmp_path)
    assert (tmp_path / store.LOCK).read_text() == ""  # no append left pending


def test_a_replaced_row_or_a_new_column_rewrites_the_table_whole(tmp_path):
    for run_id in "abc":
        store.upsert_result(tmp_path, {**ROW, "run_id": run_id})
    store.upsert_result(tmp_path, {**ROW, "run_id": "b", "fid": 9})  # a resumed run replaces its row, which moves last
    assert _rows(tmp_path) == [("a", "1.5"), ("c", "1.5"), ("b", "9")]
    store.ensure_result(tmp_path, {**ROW, "run_id": "a", "fid": 7})  # listed already: nothing changes
    assert _rows(tmp_path) == [("a", "1.5"), ("c", "1.5"), ("b", "9")]
    store.upsert_result(tmp_path, {**ROW, "run_id": "d", "kid": 0.25})  # a new column: every row gets it
    rows = store.read_results(tmp_path)
    assert [row["kid"] for row in rows] == ["", "", "", "0.25"]
    assert (tmp_path / store.RESULTS).read_text().splitlines()[0] == "run_id,status,fid,kid,notes"


def test_a_run_id_seen_inside_another_value_is_not_taken_for_its_row(tmp_path):
    store.upsert_result(tmp_path, {**ROW, "run_id": "a", "notes": "line one\nb,ok"})  # "\nb," inside a quoted value
    store.upsert_result(tmp_path, {**ROW, "run_id": "b"})
    store.ensure_result(tmp_path, {**ROW, "run_id": "b", "fid": 3})
    assert _rows(tmp_path) == [("a", "1.5"), ("b", "1.5")]


def _replacing_writer(out, prefix, count):
    for index in range(count):
        store.upsert_result(out, {**ROW, "run_id": f"{prefix}-{index}", "fid": index})
        if index % 5 == 4:  # now and then a resumed run replaces an earlier row
            store.upsert_result(out, {**ROW, "run_id": f"{prefix}-{index - 2}", "fid": -1})


def test_four_writers_appending_and_replacing_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_replacing_writer, args=(tmp_path, prefix, 30)) for prefix in "abcd"]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    expected = {f"{p}-{i}": ("-1" if i % 5 == 2 else str(i)) for p in "abcd" for i in range(30)}
    rows = store.read_results(tmp_path)
    assert len(rows) == len(expected) and {row["run_id"]: row["fid"] for row in rows} == expected


def _long_row_writer(out, count):
    for index in range(count):  # rows longer than a page: a write that could be seen half done
        store.upsert_result(out, {**ROW, "run_id": f"long-{index}", "notes": str(index % 10) * 9000})


def test_a_reader_never_sees_a_half_row(tmp_path):
    store.upsert_result(tmp_path, {**ROW, "run_id": "first", "notes": "0" * 9000})
    writer = multiprocessing.get_context("spawn").Process(target=_long_row_writer, args=(tmp_path, 150))
    writer.start()
    reads, counts = 0, []
    while writer.is_alive() or reads < 3:
        rows = store.read_results(tmp_path)  # a half row would be a cut-line GbenchError or a short note
        assert all(len(row["notes"]) == 9000 and len(set(row["notes"])) == 1 for row in rows)
        counts.append(len(rows))
        reads += 1
    writer.join()
    assert writer.exitcode == 0 and counts == sorted(counts) and counts[-1] == 151
    assert len(set(counts)) > 2  # the reads really overlapped the appends


KILLED_MID_APPEND = """
import os, signal, sys
from gbench.results import store
real_pwrite = os.pwrite
def half_then_killed(descriptor, data, offset):
    real_pwrite(descriptor, data[: len(data) // 2], offset)
    os.kill(os.getpid(), signal.SIGKILL)
os.pwrite = half_then_killed
store.upsert_result(sys.argv[1], {"run_id": "killed", "status": "ok", "fid": 3.0, "notes": "x" * 50})
"""


def test_a_writer_killed_mid_append_leaves_no_half_row(tmp_path):
    store.upsert_result(tmp_path, {**ROW, "run_id": "a"})
    before = (tmp_path / store.RESULTS).read_bytes()
    result = subprocess.run(
        [sys.executable, "-c", KILLED_MID_APPEND, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    damaged = (tmp_path / store.RESULTS).read_bytes()
    # the half row is on disk
    assert damaged.startswith(before) and len(damaged) > len(before) and not damaged.endswith(b"\n")
    assert _rows(tmp_path) == [("a", "1.5")]  # readers skip it
    store.upsert_result(tmp_path, {**ROW, "run_id": "b"})  # the next writer cuts it off first
    assert (tmp_path / store.RESULTS).read_bytes() == before + b"b,ok,1.5,\n"
    assert (tmp_path / store.LOCK).read_text() == ""


FULL_DISK_APPEND = """
import resource, sys
from gbench.results import store
from gbench.errors import GbenchError
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    store.upsert_result(sys.argv[1], {"run_id": "big", "status": "ok", "fid": 2.0, "notes": "x" * 20000})
except GbenchError as error:
    print(error)
    sys.exit(2)
"""


@pytest.mark.parametrize("room", ["part of the row", "not even the note"])
def test_a_full_disk_mid_append_keeps_the_table_as_it_was(tmp_path, room):
    store.upsert_result(tmp_path, {**ROW, "run_id": "a"})
    before = (tmp_path / store.RESULTS).read_bytes()
    limit = len(before) + 4096 if room == "part of the row" else 4  # 4 bytes: the lock file's note is cut
    command = [sys.executable, "-c", FULL_DISK_APPEND, str(tmp_path), str(limit)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "results.csv" in result.stdout and "File too large" in result.stdout, (
        result.stdout,
        result.stderr,
    )
    assert (tmp_path / store.RESULTS).read_bytes() == before and (tmp_path / store.LOCK).read_text() == ""
    assert _rows(tmp_path) == [("a", "1.5")]


def test_a_results_csv_cut_mid_line_is_one_error_for_readers_and_writers(tmp_path):
    store.upsert_result(tmp_path, {**ROW, "run_id": "a"})
    store.upsert_result(tmp_path, {**ROW, "run_id": "b"})
    path = tmp_path / store.RESULTS
    cut = path.read_bytes()[:-4]  # cut by a copy or a crash, with no append pending
    path.write_bytes(cut)
    for action in (lambda: store.read_results(tmp_path), lambda: store.upsert_result(tmp_path, {**ROW, "run_id": "c"})):
        with pytest.raises(GbenchError, match="ends in a cut line"):
            action()
    assert path.read_bytes() == cut  # nothing written over it


def test_results_are_read_where_the_lock_file_cannot_be_opened(tmp_path):
    # as in a read-only folder no writer ever locked; a folder in the lock file's place stands in
    # for it because root, who runs the tests in CI, may open any file whatever its mode
    store.upsert_result(tmp_path, {**ROW, "run_id": "a"})
    (tmp_path / store.LOCK).unlink()
    (tmp_path / store.LOCK).mkdir()
    assert _rows(tmp_path) == [("a", "1.5")]


READ_ROWS = "import sys; from gbench.results import store; print(len(store.read_results(sys.argv[1])))"


def test_a_reader_waits_for_an_append_under_way(tmp_path):
    store.upsert_result(tmp_path, {**ROW, "run_id": "a"})
    path = tmp_path / store.RESULTS
    with store.locked(tmp_path), open(path, "ab") as table:
        table.write(b"b,ok,")  # half a row, as a writer holding the lock has it mid-write
        table.flush()
        reader = subprocess.Popen([sys.executable, "-c", READ_ROWS, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            reader.wait(timeout=3)  # it waits for the lock instead of reading the half row
        table.write(b"2,\n")
    stdout, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0 and stdout.split() == ["2"]
