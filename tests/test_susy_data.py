"""The SUSY loader: UCI and header formats, row ranges, the parsed-row cache, clear errors, streaming download."""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from autograder import course_data
from autograder.course_data import DataError, load_susy, read_susy_file
from autograder.datasets import susy_sim

# The first row of the real UCI SUSY.csv (from the data README): a background event.
UCI_FIRST_ROW = (
    "0.000000000000000000e+00,9.728614687919616699e-01,6.538545489311218262e-01,1.176224589347839355e+00,"
    "1.157156467437744141e+00,-1.739873170852661133e+00,-8.743090629577636719e-01,5.677649974822998047e-01,"
    "-1.750000417232513428e-01,8.100607395172119141e-01,-2.525521218776702881e-01,1.921887040138244629e+00,"
    "8.896374106407165527e-01,4.107718467712402344e-01,1.145620822906494141e+00,1.932632088661193848e+00,"
    "9.944640994071960449e-01,1.367815494537353516e+00,4.071449860930442810e-02"
)
REAL_10K = Path(os.environ.get("COURSE_DATA_DIR", "/nonexistent")) / "susy_real_10k.csv.gz"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A private Keras cache, no COURSE_DATA_DIR, and no real download."""
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(course_data.susy, "SUSY_URL", "http://127.0.0.1:9/SUSY.csv.gz")  # nothing listens there
    return tmp_path


@pytest.fixture(scope="module")
def events():
    """The real first row followed by 2999 simulated events: (X float32 (3000, 18), y int8)."""
    real = np.array([float(v) for v in UCI_FIRST_ROW.split(",")], dtype=np.float32)
    X, y = susy_sim.simulate(2999, seed=5)
    return np.vstack([real[1:], X]), np.concatenate([[0], y]).astype(np.int8)


@pytest.fixture
def uci_gz(events, tmp_path):
    path = tmp_path / "data" / "SUSY.csv.gz"
    path.parent.mkdir()
    susy_sim.write_uci_csv(path, *events)
    return path


def test_reads_the_uci_format_exactly(events, uci_gz):
    X, y = read_susy_file(uci_gz, cache=False)
    assert X.dtype == np.float32 and X.shape == (3000, 18) and y.dtype == np.int8
    np.testing.assert_array_equal(X, events[0])
    np.testing.assert_array_equal(y, events[1])
    # The real row, value by value, as the file prints it.
    assert X[0, 0] == np.float32(0.9728614687919616699) and X[0, 4] == np.float32(-1.739873170852661133)
    assert UCI_FIRST_ROW.startswith(gzip.decompress(uci_gz.read_bytes()).decode()[:60])


def test_plain_csv_and_gzip_agree(events, uci_gz):
    plain = uci_gz.with_name("SUSY.csv")
    plain.write_bytes(gzip.decompress(uci_gz.read_bytes()))
    X, y = load_susy(plain, cache=False)
    np.testing.assert_array_equal(X, events[0])
    np.testing.assert_array_equal(y, events[1])


@pytest.mark.skipif(not REAL_10K.exists(), reason="real SUSY sample not available; set COURSE_DATA_DIR")
def test_reads_the_header_format_of_the_real_sample():
    X, y = load_susy(REAL_10K, cache=False)
    assert X.shape == (10000, 18) and X.dtype == np.float32
    assert np.bincount(y).tolist() == [5447, 4553]
    ref = np.loadtxt(gzip.open(REAL_10K), delimiter=",", skiprows=1, dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(X, ref[:, 1:])
    # UCI's normalisation: |phi| <= 1.74, |eta| <= 2.1, positive energies average about 1.
    assert np.abs(X[:, [2, 5, 7]]).max() <= 1.75 and np.abs(X[:, [1, 4]]).max() <= 2.11
    assert 0.9 < X[:, [0, 3, 6]].mean() < 1.1


def test_row_ranges_and_feature_subsets(events, uci_gz):
    X_all, y_all = events
    X, y = load_susy(uci_gz, start=100, stop=250, cache=False)
    np.testing.assert_array_equal(X, X_all[100:250])
    np.testing.assert_array_equal(y, y_all[100:250])
    low, _ = load_susy(uci_gz, stop=10, features="low", cache=False)
    high, _ = load_susy(uci_gz, stop=10, features="high", cache=False)
    assert low.shape == (10, 8) and high.shape == (10, 10)
    np.testing.assert_array_equal(np.hstack([low, high]), X_all[:10])
    assert course_data.SUSY_LOW_LEVEL + course_data.SUSY_HIGH_LEVEL == course_data.SUSY_FEATURES
    tail, _ = load_susy(uci_gz, start=2990, stop=10**9, cache=False)  # past the end: up to the end
    np.testing.assert_array_equal(tail, X_all[2990:])
    empty, _ = load_susy(uci_gz, start=7, stop=7, cache=False)
    assert empty.shape == (0, 18)
    with pytest.raises(ValueError):
        load_susy(uci_gz, start=5, stop=2)
    with pytest.raises(ValueError):
        load_susy(uci_gz, features="medium")


def test_cache_hit_returns_identical_arrays_without_parsing(events, uci_gz, monkeypatch, isolated):
    X1, y1 = load_susy(uci_gz, stop=2000)
    assert list((isolated / "keras_home" / "datasets" / course_data.SUSY_CACHE).glob("*.X.npy"))

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(course_data.susy, "_read_stream", no_parsing)
    X2, y2 = load_susy(uci_gz, stop=2000)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = load_susy(uci_gz, start=500, stop=700, features="high")  # inside the cached rows
    np.testing.assert_array_equal(X3, events[0][500:700, 8:])
    X2[0, 0] = -1.0  # a copy, not a read-only view of the cache
    with pytest.raises(AssertionError, match="parsed again"):
        load_susy(uci_gz, stop=2500)  # rows the cache does not have


def test_cache_follows_the_file(events, uci_gz):
    X1, _ = load_susy(uci_gz, stop=50)
    X, y = events
    susy_sim.write_uci_csv(uci_gz, X[::-1], y[::-1])
    os.utime(uci_gz, ns=(uci_gz.stat().st_atime_ns, uci_gz.stat().st_mtime_ns + 10**9))
    X2, _ = load_susy(uci_gz, stop=50)
    np.testing.assert_array_equal(X2, X[::-1][:50])


def write_lines(path, lines):
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def uci_lines(events, n=20):
    buf = io.BytesIO()
    X, y = events
    np.savetxt(buf, np.column_stack([y[:n], X[:n]]).astype(np.float64), fmt="%.18e", delimiter=",")
    return buf.getvalue().decode().splitlines()


def test_truncated_gzip_is_a_clear_error(uci_gz):
    data = uci_gz.read_bytes()
    uci_gz.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match="truncated") as err:
        load_susy(uci_gz, cache=False)
    assert str(uci_gz) in str(err.value)
    uci_gz.write_bytes(data[:10] + b"\xff" * 50 + data[60:])
    with pytest.raises(DataError, match="corrupt gzip"):
        load_susy(uci_gz, cache=False)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_wrong_column_count_names_the_line(events, tmp_path, suffix):
    lines = uci_lines(events)
    lines[4] = lines[4].rsplit(",", 1)[0]  # line 5 loses its last value
    path = write_lines(tmp_path / f"bad{suffix}", lines)
    with pytest.raises(DataError, match=r"line 5 has 18 columns; SUSY has 19") as err:
        load_susy(path, cache=False)
    assert str(path) in str(err.value)


def test_non_numeric_values_name_the_line(events, tmp_path):
    lines = uci_lines(events)
    fields = lines[6].split(",")
    fields[3] = "abc"
    lines[6] = ",".join(fields)
    with pytest.raises(DataError, match=r"line 7: 'abc' is not a number"):
        load_susy(write_lines(tmp_path / "abc.csv", lines), cache=False)
    lines = uci_lines(events)
    lines[11] = lines[11][:40] + "x" + lines[11][41:]  # one digit deep inside a %.18e value
    with pytest.raises(DataError, match=r"line 12: .*x.* is not a number"):
        load_susy(write_lines(tmp_path / "x.csv", lines), cache=False)


def test_labels_must_be_0_or_1(events, tmp_path):
    lines = uci_lines(events)
    lines[2] = "2.000000000000000000e+00" + lines[2][24:]
    with pytest.raises(DataError, match=r"line 3: label 2 is not 0 or 1"):
        load_susy(write_lines(tmp_path / "label.csv", lines), cache=False)


def test_header_with_wrong_columns_is_rejected(tmp_path):
    path = write_lines(tmp_path / "h.csv", ["SUSY,a,b", "0,1,2"])
    with pytest.raises(DataError, match="header with 3 columns"):
        load_susy(path, cache=False)


def test_numpy_fallback_without_pyarrow(events, tmp_path, monkeypatch):
    lines = ["SUSY," + ",".join(course_data.SUSY_FEATURES)]
    lines += [",".join([str(int(label))] + [repr(float(v)) for v in row]) for row, label in zip(*events)][:300]
    path = write_lines(tmp_path / "short.csv.gz", lines)
    with_pyarrow, _ = load_susy(path, cache=False)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    X, y = load_susy(path, cache=False)
    np.testing.assert_array_equal(X, events[0][:300])
    np.testing.assert_array_equal(X, with_pyarrow)


def test_module_stays_standalone(tmp_path):
    """course_data/ is carried by every notebook: it must import with numpy and the stdlib alone."""
    code = (
        "import sys\n"
        "for name in ('pyarrow', 'pandas', 'tqdm', 'keras', 'autograder'): sys.modules[name] = None\n"
        f"sys.path.insert(0, {str(Path(course_data.__file__).parent.parent)!r})\n"
        "import course_data\n"
        "print(len(course_data.SUSY_FEATURES))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "18"


def test_finds_the_file_in_course_data_dir(events, uci_gz, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(uci_gz.parent))
    X, y = load_susy(stop=30)
    np.testing.assert_array_equal(X, events[0][:30])


def test_error_names_every_place_and_the_fix(isolated, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(isolated / "nowhere"))
    with pytest.raises(DataError) as err:
        load_susy(stop=10)
    msg = str(err.value)
    for name in course_data.SUSY_FILE_NAMES:
        assert str(isolated / "nowhere" / name) in msg
        assert str(isolated / "keras_home" / "datasets" / name) in msg
    assert course_data.susy.SUSY_URL in msg and "Fix:" in msg and "COURSE_DATA_DIR" in msg


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files in 64 kB pieces and counts the bytes that went out."""

    sent = 0

    def copyfile(self, source, outputfile):
        while chunk := source.read(1 << 16):
            try:
                outputfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return
            type(self).sent += len(chunk)

    def log_message(self, *args):
        pass


def test_download_streams_stops_early_and_keeps_the_rows(events, isolated, monkeypatch):
    # A gzip file much larger than what 200 rows need (and than the socket buffers in between).
    text = io.BytesIO()
    np.savetxt(text, np.column_stack([events[1], events[0]]).astype(np.float64), fmt="%.18e", delimiter=",")
    served = isolated / "www" / "SUSY.csv.gz"
    served.parent.mkdir()
    served.write_bytes(gzip.compress(text.getvalue() * 24, compresslevel=1))
    size = served.stat().st_size
    assert size > 12 * 2**20

    handler = functools.partial(CountingHandler, directory=str(served.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(course_data.susy, "SUSY_URL", f"http://127.0.0.1:{server.server_address[1]}/SUSY.csv.gz")
        X, y = load_susy(start=100, stop=300, download=True)
    finally:
        server.shutdown()
        server.server_close()
    np.testing.assert_array_equal(X, events[0][100:300])
    np.testing.assert_array_equal(y, events[1][100:300])
    print(f"served {CountingHandler.sent:,} of {size:,} bytes")
    assert CountingHandler.sent < size / 2, (CountingHandler.sent, size)
    cache = isolated / "keras_home" / "datasets"
    assert not (cache / "SUSY.csv.gz").exists()  # only the rows asked for are kept
    assert list((cache / course_data.SUSY_CACHE).glob("*.X.npy"))
    # The server is gone: the same rows come from the cache.
    X2, _ = load_susy(start=150, stop=250, features="low", download=True)
    np.testing.assert_array_equal(X2, events[0][150:250, :8])


def test_download_of_every_row_keeps_the_file(events, uci_gz, isolated, monkeypatch):
    handler = functools.partial(CountingHandler, directory=str(uci_gz.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(course_data.susy, "SUSY_URL", f"http://127.0.0.1:{server.server_address[1]}/SUSY.csv.gz")
        X, y = load_susy()
    finally:
        server.shutdown()
        server.server_close()
    np.testing.assert_array_equal(X, events[0])
    kept = isolated / "keras_home" / "datasets" / "SUSY.csv.gz"
    assert kept.read_bytes() == uci_gz.read_bytes()
    assert not list(kept.parent.glob("*.part"))
    X2, _ = load_susy(start=10, stop=20, download=False)  # now found in the Keras cache
    np.testing.assert_array_equal(X2, events[0][10:20])
