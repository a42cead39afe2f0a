"""What residency knows of model sizes: the last measured size of each version, and the predicted size of a
version not measured yet from its model files' size and what similar-sized loads measured."""
from __future__ import annotations

import statistics
from pathlib import Path

FIRST_RATIO = 2.2  # predicted bytes per model-file byte before any load was measured (MLPs, CPU)
SIMILAR = 2.0  # "similar" loads: model files within this factor of each other
MAX_SAMPLES = 256
LARGE_FILES = 8 << 20  # model files from this size on: the measured/file ratio is weights, not fixed overhead
CONSERVATIVE_MARGIN = 1.25


def files_size(base_path: str, version: int) -> int:
    """Bytes of a local version folder's files (0 when it cannot be read)."""
    try:
        return sum(p.stat().st_size for p in Path(f"{base_path}/{version}").iterdir() if p.is_file())
    except OSError:
        return 0


class SizeBook:
    def __init__(self) -> None:
        self._sizes: dict[tuple[str, int], int] = {}  # last measured size of each version
        self._samples: list[tuple[int, float]] = []  # (model files' bytes, measured / files) of recent loads

    def known(self, name: str, version: int) -> int:
        """The version's last measured size (0: never measured)."""
        return self._sizes.get((name, version), 0)

    def empty(self) -> bool:
        """No load has been measured yet."""
        return not self._samples

    def learn(self, name: str, version: int, size: int, files: int) -> None:
        self._sizes[(name, version)] = size
        if files > 0 and size > 0:
            self._samples.append((files, size / files))
            del self._samples[:-MAX_SAMPLES]

    def measured(self, name: str) -> int:
        """The last measured size of a model's versions together (0: never measured)."""
        return sum(size for (n, _), size in self._sizes.items() if n == name)

    def predict_files(self, files: int, conservative: bool = False) -> int:
        """Predicted bytes of a version whose model files hold ``files`` bytes: times the median measured/file
        ratio of similar-sized loads (of all loads, of FIRST_RATIO). ``conservative`` (ModelMesh's
        predictModelSize): times the largest ratio of similar-sized loads; without any, times the largest of
        FIRST_RATIO and the ratios of large loads, plus a margin. NOTE: a small model's ratio is mostly fixed
        overhead (a 76 KB MLP measured 12 MB here, 166x), so it says nothing about a larger one."""
        similar = [r for f, r in self._samples if files / SIMILAR <= f <= files * SIMILAR]
        if conservative:
            if similar:
                return int(files * max(similar))
            large = [r for f, r in self._samples if f >= LARGE_FILES]
            return int(files * max([FIRST_RATIO, *large]) * CONSERVATIVE_MARGIN)
        similar = similar or [r for _, r in self._samples] or [FIRST_RATIO]
        return int(files * statistics.median(similar))
