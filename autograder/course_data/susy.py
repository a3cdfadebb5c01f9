"""SUSY, the UCI data set of Baldi, Sadowski, Whiteson, Nature Communications 5, 4308 (2014).

5,000,000 simulated events, one per line: the label (1 = chargino pair signal, 0 = WW background)
then 8 low-level and 10 high-level features, as %.18e, no header. SUSY is looked for the way MNIST
is (``SUSY.csv.gz`` or ``SUSY.csv``); ``load_susy`` reads only the rows asked for, streams a download
instead of waiting for the whole file, and keeps the parsed rows in the Keras cache so the next load
is instant.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
import warnings
import zlib
from collections import deque
from pathlib import Path

import numpy as np

from .common import DATA_DIR_ENV, DataError, _progress, first_readable, keras_cache_dir

SUSY_FILE_NAMES = ("SUSY.csv.gz", "SUSY.csv")
SUSY_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00279/SUSY.csv.gz"
SUSY_FEATURES = (
    "lepton 1 pT", "lepton 1 eta", "lepton 1 phi", "lepton 2 pT", "lepton 2 eta", "lepton 2 phi",
    "missing energy magnitude", "missing energy phi", "MET_rel", "axial MET", "M_R", "M_TR_2", "R",
    "MT2", "S_R", "M_Delta_R", "dPhi_r_b", "cos(theta_r1)",
)
SUSY_LOW_LEVEL = SUSY_FEATURES[:8]
SUSY_HIGH_LEVEL = SUSY_FEATURES[8:]
SUSY_TOTAL_ROWS = 5_000_000
SUSY_TRAIN_ROWS = 4_500_000  # the standard split: the first 4.5M rows train, the last 500k test
SUSY_CACHE = "susy_parsed"  # folder in the Keras cache for parsed rows

_SUSY_SUBSETS = {"all": slice(0, 18), "low": slice(0, 8), "high": slice(8, 18)}
_BLOCK = 1 << 20  # bytes of text per parsing job (local files); small blocks keep the peak memory low
_NET_BLOCK = 1 << 18  # smaller for downloads, so that a few rows cost little
# 10**(exponent - 8): index d for exponent +d, 100 + d for -d (d = 0..99).
_POW10 = 10.0 ** (np.concatenate([np.arange(100), -np.arange(100)]) - 8.0)


def susy_candidates() -> list[tuple[str, Path]]:
    """Where SUSY is looked for, in order, as (description, path) pairs."""
    places = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        places += [(f"${DATA_DIR_ENV}", Path(data_dir) / name) for name in SUSY_FILE_NAMES]
    places += [("Keras cache", keras_cache_dir() / name) for name in SUSY_FILE_NAMES]
    return places


def load_susy(path=None, *, start=0, stop=None, features="all", download=True, cache=True):
    """Return rows ``[start, stop)`` of UCI SUSY as ``(X, y)``: X float32 (n, k), y int8 (n,).

    ``features``: "all" (k = 18, ``SUSY_FEATURES``), "low" (the 8 measured ones) or "high" (the 10
    derived ones). The standard split is ``stop=SUSY_TRAIN_ROWS`` for training and
    ``start=SUSY_TRAIN_ROWS`` for testing. Without ``path`` the file is looked for in
    ``$COURSE_DATA_DIR``, then the Keras cache, then downloaded from UCI: the download is streamed and
    stops as soon as the rows asked for have arrived. With ``cache``, parsed rows are kept in the
    Keras cache (``SUSY_CACHE``) and the next load of the same rows takes a moment.
    """
    if features not in _SUSY_SUBSETS:
        raise ValueError(f"features must be 'all', 'low' or 'high', not {features!r}")
    start, stop = _check_range(start, stop)
    if path is not None:
        X, y = read_susy_file(path, start=start, stop=stop, cache=cache)
        return _subset(X, features), y
    found, rows, tried = first_readable(susy_candidates(),
                                        lambda candidate: read_susy_file(candidate, start=start, stop=stop, cache=cache),
                                        warn="skipping unusable SUSY file")
    if found is not None:
        X, y = rows
        _warn_if_short(found, start, stop, len(y))
        return _subset(X, features), y
    key = _url_key(SUSY_URL)
    if cache:
        hit = _cache_load(key, start, stop)
        if hit is not None:
            return _subset(hit[0], features), hit[1]
        tried.append(f"  - Keras cache, rows kept from earlier downloads: {_cache_dir()} "
                     f"(not rows {_rows_text(start, stop)})")
    if download:
        try:
            X, y = _download_susy(SUSY_URL, start, stop, cache)
            return _subset(X, features), y
        except DataError as exc:
            tried.append(f"  - download from {SUSY_URL}: {exc}")
        except Exception as exc:  # no network, HTTP error, disk full ...
            tried.append(f"  - download from {SUSY_URL}: {type(exc).__name__}: {exc}")
    else:
        tried.append(f"  - download from {SUSY_URL}: not tried (download=False)")
    raise DataError(
        "SUSY was not found. Looked in:\n" + "\n".join(tried) + "\n"
        f"Fix: download {SUSY_URL} (about 880 MB) and put SUSY.csv.gz in {keras_cache_dir()} or in a folder "
        f"named by {DATA_DIR_ENV} (in a notebook, before this cell: import os; os.environ[\"{DATA_DIR_ENV}\"] = "
        "\"/path/to/that/folder\"), or run where the network is reachable."
    )


def susy_validation(train_rows: int, share: int):
    """The validation split the SUSY notebooks hold out: the last ``1/share`` of the first ``train_rows`` events,
    as ``(X, y)``. Read without downloading anything: raises DataError where no copy of SUSY is here."""
    X, y = load_susy(stop=train_rows, download=False)
    n_val = len(X) // share
    return X[-n_val:], y[-n_val:]


def _warn_if_short(path, start, stop, rows):
    """Say so when the file ended before the rows asked for: a partial download, or a sample of SUSY."""
    if stop is not None and rows < stop - start:
        warnings.warn(f"{path} holds only {rows:,} of the {stop - start:,} events asked for (rows "
                      f"{_rows_text(start, stop)}): a partial download or a smaller sample? Using the "
                      f"{rows:,} it has.", stacklevel=3)


def read_susy_file(path, *, start=0, stop=None, cache=True):
    """Read and validate rows ``[start, stop)`` of one SUSY file: ``(X float32 (n, 18), y int8 (n,))``.

    Gzip or plain text, with or without a header line. Raises DataError naming the file and the
    line when the file is truncated, corrupt, has the wrong number of columns, a value that is not
    a number, or a label other than 0 and 1.
    """
    path = Path(path)
    start, stop = _check_range(start, stop)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    key = _file_key(path, st)
    if cache:
        hit = _cache_load(key, start, stop)
        if hit is not None:
            return hit
    gz = _is_gzip(path)
    # Rows to expect (memory is only touched as rows arrive, and grows if more come): UCI's gzip
    # holds about 2.7 times its size in text, a UCI line is about 475 bytes.
    rows = _Rows(start, stop, st.st_size * (3 if gz else 1) // 400 + 1000)
    try:
        with open(path, "rb") as f:
            pieces = _pieces(f.read, gz, str(path), _BLOCK // 4 if gz else _BLOCK)
            _read_stream(pieces, str(path), rows, _BLOCK, threads=True)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    X, y = rows.result(str(path))
    if cache:
        _cache_save(key, str(path.resolve()), start, rows, X, y)
    return X, y


def _check_range(start, stop):
    start = int(start)
    stop = None if stop is None else int(stop)
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"need 0 <= start <= stop, got start={start}, stop={stop}")
    return start, stop


def _rows_text(start, stop):
    return f"{start:,}-{'end' if stop is None else f'{stop:,}'}"


def _subset(X, features):
    if features == "all":
        return X
    return np.ascontiguousarray(X[:, _SUSY_SUBSETS[features]])


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


# --- reading ---------------------------------------------------------------------------------

def _pieces(read, gz, name, size=1 << 20):
    """Yield the file's text in pieces; gzip is decompressed on the fly (several members allowed)."""
    if not gz:
        while piece := read(size):
            yield piece
        return
    d = zlib.decompressobj(zlib.MAX_WBITS | 32)
    while raw := read(size):
        out = []
        while raw:
            if d.eof:  # a further gzip member
                d = zlib.decompressobj(zlib.MAX_WBITS | 32)
            try:
                out.append(d.decompress(raw))
            except zlib.error as exc:
                raise DataError(f"{name}: corrupt gzip data ({exc}); download the file again") from None
            raw = d.unused_data if d.eof else b""
        yield b"".join(out)
    if not d.eof:
        raise DataError(f"{name}: the gzip data stops before its end: the file is truncated (an interrupted "
                        "download?); delete it and download it again")


def _line_blocks(pieces, size):
    """Regroup text pieces into blocks of whole lines, each starting with the previous b"\n".

    Blocks are read-only views (no copy beyond joining the pieces once).
    """
    carry = b"\n"
    parts, have = [], 0
    for piece in pieces:
        parts.append(piece)
        have += len(piece)
        if have < size:
            continue
        joined = b"".join([carry, *parts])
        parts, have = [], 0
        cut = joined.rfind(b"\n")
        if cut > 0:
            yield memoryview(joined)[: cut + 1]
            carry = joined[cut:]
        else:
            carry = joined
    joined = b"".join([carry, *parts])
    if len(joined) > 1:
        if not joined.endswith(b"\n"):
            joined += b"\n"
        yield memoryview(joined)


def _read_stream(pieces, name, rows, block_size, threads=False):
    """Parse text pieces into ``rows`` until it has what it needs (parsing runs ahead in 2 threads)."""
    pool = None
    if threads and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2)
    line = [1]  # file line number of the next block's first line

    def take(result):
        try:
            out, count = result() if callable(result) else result
        except _LineError as exc:
            raise DataError(f"{name}: line {line[0] + exc.index}{exc}") from None
        rows.add(out, name, line[0])
        line[0] += count

    try:
        queue = deque()
        first = True
        for block in _line_blocks(pieces, block_size):
            if first:
                first = False
                head = bytes(block[1 : 1 + 65536]).split(b"\n", 1)[0]
                if _is_header(head):
                    n = head.count(b",") + 1
                    if n != 19:
                        raise DataError(f"{name}: line 1 is a header with {n} columns; SUSY has 19 "
                                        "(the label, then 18 features)")
                    block = block[1 + len(head) :]
                    line[0] = 2
                    if len(block) < 2:
                        continue
            if pool is None:
                take(lambda: _parse_block(block))
            else:
                queue.append(pool.submit(_parse_block, block))
                while len(queue) > 1 or (queue and queue[0].done()):
                    take(queue.popleft().result)
            if rows.full():
                break
        while queue:
            take(queue.popleft().result)
        if not rows.full():
            rows.complete = True
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class _LineError(ValueError):
    """A problem on line ``index`` (0-based) of a block; _read_stream adds the file and line number."""

    def __init__(self, index, message):
        super().__init__(message)
        self.index = index


def _is_header(line: bytes) -> bool:
    try:
        float(line.split(b",", 1)[0])
        return False
    except ValueError:
        return True


def _parse_block(block):
    """Parse a block of whole lines (starting with b"\n"): (float32 (rows, 19), lines in the block)."""
    out = _parse_uci(block)
    if out is not None:
        return out, len(out)
    data = bytes(block)
    return _parse_any(data), data.count(b"\n") - 1


def _parse_uci(block):
    """Fast path for UCI's exact layout: every value written as ``%.18e``; None if it is not that.

    Every value has exactly one 'e', and the characters around it sit at fixed offsets: the sign,
    the leading digit and '.' 21 to 19 before it, 18 decimals, then 'e', the exponent's sign and
    two digits, then ',' or the end of line. The text is read as 8-byte words at those offsets and
    every character checked; eight decimals are decoded at once (SWAR), enough for the exact
    float32 (the file holds float32 values: 9 significant digits identify one).
    """
    a = np.frombuffer(block, np.uint8)
    n = len(a)
    e = np.flatnonzero(a == 101)
    lines, extra = divmod(len(e), 19)
    if lines < 1 or extra or e[0] < 21 or e[-1] != n - 5:
        return None
    at = e - 21  # where each value starts (its sign, or the delimiter before it)

    def word(offset):  # the 8 bytes at at + offset, as little-endian words
        return np.ndarray((n - 7 - offset,), "<u8", block, offset, (1,))[at]

    head = word(0)  # sign or delimiter, digit, '.', decimals 1-5
    frac = word(3) ^ 0x3030303030303030  # decimals 1-8 as digit values, first in the low byte
    mid = word(11) ^ 0x3030303030303030  # decimals 9-16
    tail = word(18)  # decimals 16-18, 'e', exponent sign, 2 digits, delimiter
    sign = head & 0xFF
    neg = sign == 45
    d0 = ((head >> 8) & 0xFF) ^ 0x30
    edig = (tail >> 40) & 0xFFFF
    edig ^= 0x3030
    esign = (tail >> 32) & 0xFF
    # A byte is a digit when (byte ^ 0x30) < 10, i.e. adding 0x76 leaves bit 7 clear.
    digits = (frac + 0x7676767676767676) | frac | (mid + 0x7676767676767676) | mid
    digits |= ((tail & 0xFFFFFF) ^ 0x303030) + 0x767676
    digits |= ((edig + 0x7676) | edig) << 24
    ok = (digits & 0x8080808080808080) == 0
    ok &= (neg | (sign == 44) | (sign == 10)) & (d0 < 10) & (((head >> 16) & 0xFF) == 46)
    ok &= (esign == 43) | (esign == 45)
    delim = (tail >> 56).reshape(lines, 19)
    if not (ok.all() and (delim[:, :18] == 44).all() and (delim[:, 18] == 10).all()):
        return None
    frac = (frac * 10 + (frac >> 8)) & 0x00FF00FF00FF00FF
    frac = (frac * 100 + (frac >> 16)) & 0x0000FFFF0000FFFF
    frac = (frac * 10000 + (frac >> 32)) & 0xFFFFFFFF
    exp = (edig & 0xFF) * 10 + (edig >> 8) + (esign == 45) * np.uint64(100)
    value = d0.astype(np.float64)
    value *= 1e8
    value += frac
    value *= _POW10[exp]
    np.negative(value, out=value, where=neg)
    return value.astype(np.float32).reshape(lines, 19)


def _parse_any(block):
    """Parse any CSV layout (e.g. short numbers): pyarrow when installed, else numpy."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return _parse_numpy(block)
    columns = [f"c{i}" for i in range(19)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(column_names=columns, use_threads=False),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.float32() for c in columns}),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return _parse_numpy(block)  # it finds the line and says what is wrong
    out = np.empty((table.num_rows, 19), np.float32)
    for j, column in enumerate(table.columns):
        out[:, j] = column.to_numpy(zero_copy_only=False)
    return out


def _parse_numpy(block):
    """Parse with numpy only; errors name the line and the offending value."""
    texts = block.split(b"\n")[1:-1]
    fields = []
    for i, text in enumerate(texts):
        text = text.rstrip(b"\r")
        if not text.strip():
            continue
        values = text.split(b",")
        if len(values) != 19:
            raise _LineError(i, f" has {len(values)} columns; SUSY has 19 (the label, then 18 features)")
        fields.append((i, values))
    flat = [v for _, values in fields for v in values]
    try:
        out = np.array(flat, dtype=bytes).astype(np.float64)
    except ValueError:
        for k, v in enumerate(flat):
            try:
                float(v)
            except ValueError:
                raise _LineError(fields[k // 19][0], f": {v.decode(errors='replace')!r} is not a number") from None
        raise
    return out.astype(np.float32).reshape(-1, 19)


class _Rows:
    """The rows ``[start, stop)`` of a file, gathered block by block into preallocated arrays."""

    def __init__(self, start, stop, expected):
        self.start, self.stop = start, stop
        cap = expected - start if stop is None else min(stop - start, max(expected - start, 0))
        cap = max(cap, 1000)
        # np.empty does not touch memory: rows cost memory only when they arrive.
        self.X = np.empty((cap, 18), np.float32)
        self.y = np.empty(cap, np.int8)
        self.n = 0  # rows kept
        self.seen = 0  # data rows read so far
        self.complete = False  # whether the whole file was read

    def full(self):
        return self.stop is not None and self.seen >= self.stop

    def add(self, block, name, line):
        lo = max(self.start - self.seen, 0)
        hi = len(block) if self.stop is None else min(len(block), self.stop - self.seen)
        self.seen += len(block)
        if hi <= lo:
            return
        block = block[lo:hi]
        line += lo
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            i = int(np.argmin(finite))
            raise DataError(f"{name}: about line {line + i}: a value is not a finite number")
        labels = block[:, 0]
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{name}: about line {line + i}: label {labels[i]:g} is not 0 or 1")
        m = hi - lo
        if self.n + m > len(self.y):
            cap = max(self.n + m, int(len(self.y) * 1.5))
            self.X.resize((cap, 18), refcheck=False)  # realloc: grows in place where it can
            self.y.resize(cap, refcheck=False)
        self.X[self.n : self.n + m] = block[:, 1:]
        self.y[self.n : self.n + m] = labels
        self.n += m

    def result(self, name):
        if self.seen == 0:
            raise DataError(f"{name}: no data rows")
        self.X.resize((self.n, 18), refcheck=False)
        self.y.resize(self.n, refcheck=False)
        return self.X, self.y


# --- parsed-row cache ------------------------------------------------------------------------

def _cache_dir() -> Path:
    return keras_cache_dir() / SUSY_CACHE


def _file_key(path: Path, st) -> str:
    text = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _url_key(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()[:16]


def _cache_entries(key):
    for meta in sorted(_cache_dir().glob(f"{key}-*.json")):
        try:
            info = json.loads(meta.read_text())
            yield meta, info
        except (OSError, ValueError):
            continue


def _cache_load(key, start, stop):
    """Rows ``[start, stop)`` from the cache, or None."""
    for meta, info in _cache_entries(key):
        first, last, complete = info["start"], info["stop"], info["complete"]
        end = last if stop is None else stop
        if first <= start and (end <= last or complete) and (stop is not None or complete):
            end = min(end, last)
            base = str(meta)[: -len(".json")]
            lo, hi = start - first, max(end - first, start - first)
            try:
                X = _read_npy_rows(base + ".X.npy", lo, hi, (last - first, 18), np.float32)
                y = _read_npy_rows(base + ".y.npy", lo, hi, (last - first,), np.int8)
                return X, y
            except (OSError, ValueError):
                continue
    return None


def _read_npy_rows(path, lo, hi, shape, dtype):
    """Rows [lo, hi) of a .npy file, read straight into a new array (no memory map to count twice)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        file_shape, fortran, file_dtype = header(f)
        if file_shape != shape or fortran or file_dtype != np.dtype(dtype):
            raise ValueError(f"{path}: unexpected array {file_dtype}{list(file_shape)}")
        out = np.empty((hi - lo,) + shape[1:], dtype)
        row = out.itemsize * int(np.prod(shape[1:]))
        f.seek(f.tell() + lo * row)
        if out.nbytes and f.readinto(out.reshape(-1).view(np.uint8)) != out.nbytes:
            raise ValueError(f"{path}: shorter than its header says")
        return out


def _cache_save(key, source, start, rows, X, y):
    """Keep parsed rows; entries of the same source that the new one covers are removed."""
    folder = _cache_dir()
    stop = start + len(y)
    base = folder / f"{key}-{start}-{stop}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for suffix, array in ((".X.npy", X), (".y.npy", y)):
            tmp = base.with_name(base.name + suffix + ".part")
            with open(tmp, "wb") as f:
                np.save(f, array)
            os.replace(tmp, base.with_name(base.name + suffix))
        info = {"source": source, "start": start, "stop": stop, "complete": rows.complete}
        tmp = base.with_name(base.name + ".json.part")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, base.with_name(base.name + ".json"))
        for meta in folder.glob("*.json"):
            if meta.name == base.name + ".json":
                continue
            try:
                old = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            covered = meta.name.startswith(key) and start <= old["start"] and old["stop"] <= stop
            stale = old.get("source") == source and not meta.name.startswith(key)  # the file changed
            if covered or stale:
                stem = str(meta)[: -len(".json")]
                for suffix in (".json", ".X.npy", ".y.npy"):
                    Path(stem + suffix).unlink(missing_ok=True)
    except OSError as exc:
        warnings.warn(f"could not keep the parsed SUSY rows in {folder} ({exc}); the next load parses again",
                      stacklevel=3)


# --- download --------------------------------------------------------------------------------

def _download_susy(url, start, stop, cache):
    """Stream ``url``, decompressing and parsing as it arrives; stop once the rows are in.

    Asking for every row keeps the whole file as ``SUSY.csv.gz`` in the Keras cache; asking for some
    keeps only those rows (parsed, in the cache), not the 880 MB.
    """
    target = keras_cache_dir() / SUSY_FILE_NAMES[0]
    keep_file = stop is None and start == 0
    with urllib.request.urlopen(url, timeout=30) as response:
        total = int(response.headers.get("Content-Length") or 0)
        desc = "Downloading SUSY.csv.gz" + ("" if keep_file else f" (rows {_rows_text(start, stop)})")
        bar = _progress(total, desc)
        out = tmp = None
        if keep_file:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
            out = os.fdopen(fd, "wb")

        def read(n):
            data = response.read(n)
            bar(len(data))
            if out is not None:
                out.write(data)
            return data

        try:
            rows = _Rows(start, stop, SUSY_TOTAL_ROWS)
            _read_stream(_pieces(read, True, url, 1 << 16), url, rows, _NET_BLOCK)
            X, y = rows.result(url)
            if out is not None:
                out.close()
                out = None
                shutil.move(tmp, target)
        finally:
            bar(None)
            if out is not None:
                out.close()
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    if cache:
        if keep_file:
            _cache_save(_file_key(target, target.stat()), str(target.resolve()), start, rows, X, y)
        else:
            _cache_save(_url_key(url), url, start, rows, X, y)
    return X, y
